// Collects errors and warnings against a rule, with the position of the offending field.
import type { ConfigObject } from '../config/types.ts';
import type { ModelIssue } from './types.ts';

export type FieldPath = Array<string | number>;

export function formatPath(path: FieldPath): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** Where a check reports its findings: an IssueList, or a recorder in front of one. */
export interface IssueSink {
  error(obj: ConfigObject, path: FieldPath, message: string): void;
  warn(obj: ConfigObject, path: FieldPath, message: string): void;
}

/** An error or warning as a check raised it, to be raised again when its result is reused. */
export type RecordedIssue = ['error' | 'warn', FieldPath, string];

/** A sink that passes every issue on to `to` and records it in `into`. */
export function recordingSink(to: IssueSink, into: RecordedIssue[]): IssueSink {
  return {
    error: (obj, path, message) => {
      into.push(['error', path, message]);
      to.error(obj, path, message);
    },
    warn: (obj, path, message) => {
      into.push(['warn', path, message]);
      to.warn(obj, path, message);
    },
  };
}

/** Raises recorded issues again, in their order, against `obj`. */
export function replayIssues(obj: ConfigObject, recorded: readonly RecordedIssue[], to: IssueSink): void {
  for (const [kind, path, message] of recorded) to[kind](obj, path, message);
}

export class IssueList implements IssueSink {
  readonly errors: ModelIssue[] = [];
  readonly warnings: ModelIssue[] = [];
  /** Keys of rules with at least one error: such a rule is left out of the model. */
  readonly rejected = new Set<string>();

  error(obj: ConfigObject, path: FieldPath, message: string): void {
    addOnce(this.errors, issue(obj, path, message));
    this.rejected.add(obj.key);
  }

  warn(obj: ConfigObject, path: FieldPath, message: string): void {
    addOnce(this.warnings, issue(obj, path, message));
  }
}

function issue(obj: ConfigObject, path: FieldPath, message: string): ModelIssue {
  const pos = obj.locate(path);
  return { key: obj.key, file: pos.file, line: pos.line, col: pos.col, path: formatPath(path), message };
}

export function originOf(obj: ConfigObject, path: FieldPath = []): { key: string; at: string } {
  const pos = path.length ? obj.locate(path) : obj.source;
  return { key: obj.key, at: `${pos.file}:${pos.line}` };
}

// One http route is resolved once per service port, so the same problem can be found twice.
function addOnce(list: ModelIssue[], i: ModelIssue): void {
  if (!list.some((x) => x.key === i.key && x.path === i.path && x.message === i.message)) list.push(i);
}
