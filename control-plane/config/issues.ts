// Turns zod issues into plain (path, message) problems with messages written for people editing
// YAML: unknown fields are named one by one, missing fields are called missing, and a likely
// misspelling gets a suggestion.
import type { z } from 'zod';
import type { FieldPath } from './paths.ts';

export interface Problem {
  path: (string | number)[];
  message: string;
  /** Point at the key rather than at its value (unknown fields, bad map keys). */
  atKey?: boolean;
}

export const UNSUPPORTED_FIELD = 'field not supported by meshpilot';

function valueAt(root: unknown, path: FieldPath): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a map',
  array: 'a list',
  record: 'a map',
};

// ---- looking up which keys a schema allows at a path (for "did you mean") ---------------------

interface Def {
  type: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  element?: unknown;
  valueType?: unknown;
  in?: unknown;
}

function defOf(schema: unknown): Def | undefined {
  return (schema as { _zod?: { def?: Def } } | undefined)?._zod?.def;
}

function unwrap(schema: unknown): unknown {
  for (let i = 0; i < 20; i++) {
    const def = defOf(schema);
    if (!def) return undefined;
    if (def.innerType !== undefined) schema = def.innerType;
    else if (def.type === 'pipe') schema = def.in;
    else return schema;
  }
  return schema;
}

export function allowedKeysAt(schema: unknown, path: FieldPath): string[] {
  let s = unwrap(schema);
  for (const seg of path) {
    const def = defOf(s);
    if (!def) return [];
    if (def.type === 'object' && def.shape && typeof seg === 'string') s = unwrap(def.shape[seg]);
    else if (def.type === 'array') s = unwrap(def.element);
    else if (def.type === 'record') s = unwrap(def.valueType);
    else return [];
  }
  const def = defOf(s);
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** The allowed key `unknown` was probably meant to be, if any. */
export function suggest(unknown: string, allowed: readonly string[]): string | undefined {
  const norm = (s: string) => s.replace(/[-_]/g, '').toLowerCase();
  const same = allowed.find((k) => norm(k) === norm(unknown));
  if (same) return same;
  if (unknown.length >= 4) {
    const longer = allowed.find((k) => k.startsWith(unknown));
    if (longer) return longer;
  }
  let best: string | undefined;
  let bestDistance = unknown.length >= 5 ? 2 : unknown.length >= 3 ? 1 : 0;
  for (const k of allowed) {
    const d = editDistance(unknown, k);
    if (d <= bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

// ---- issue translation ---------------------------------------------------------------------

export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], input: unknown, schema: unknown): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    switch (issue.code) {
      case 'unrecognized_keys': {
        const allowed = allowedKeysAt(schema, path);
        for (const key of issue.keys) {
          const hint = suggest(key, allowed);
          out.push({ path: [...path, key], message: hint ? `${UNSUPPORTED_FIELD} (did you mean ${JSON.stringify(hint)}?)` : UNSUPPORTED_FIELD, atKey: true });
        }
        break;
      }
      case 'invalid_key': {
        const inner = issue.issues.map((i) => i.message).join('; ');
        out.push({ path, message: inner || 'invalid key', atKey: true });
        break;
      }
      case 'invalid_type': {
        const value = valueAt(input, path);
        if (value === undefined) out.push({ path, message: 'required field is missing' });
        else if (issue.message.startsWith('Invalid input')) out.push({ path, message: `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${describe(value)}` });
        else out.push({ path, message: issue.message });
        break;
      }
      case 'invalid_union': {
        out.push({ path, message: `invalid value ${describe(valueAt(input, path))}` });
        break;
      }
      default: {
        const value = valueAt(input, path);
        if (value === undefined && issue.code !== 'custom') out.push({ path, message: 'required field is missing' });
        else out.push({ path, message: issue.message.replace(/^Invalid input: /, '') });
      }
    }
  }
  return out;
}
