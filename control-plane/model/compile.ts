// Loaded rules -> model, with the "last good version" rule applied to cross-object errors too:
// when a new version of a rule is rejected (say it routes to a subset that does not exist), the
// version accepted before stays in force, and the rest of the mesh moves on.
import type { ConfigError, ConfigObject, LoadResult } from '../config/types.ts';
import { compareText } from './compare.ts';
import { buildModel, ModelMemo } from './build.ts';
import { DEFAULT_MESH, type MeshSettings } from './mesh-identity.ts';
import type { Model, ModelIssue } from './types.ts';

export interface MeshState {
  model: Model;
  /** Objects in force (after substituting last good versions for rejected ones). */
  accepted: ConfigObject[];
  /** Schema errors from the files and cross-object errors from the model, in file order. */
  errors: Array<ConfigError | ModelIssue>;
  warnings: ModelIssue[];
  /** Keys of rules whose newest version is not in force (`file:<path>` for a file none of whose rules could be read). */
  rejected: string[];
  /** The same, each with its errors and what is in force instead. */
  rejections: Rejection[];
}

/**
 * A rule whose newest version is not in force, for whatever reason: its file does not parse, it
 * fails its schema, it duplicates the key of one in force, or the model rejects it.
 */
export interface Rejection {
  /** `Kind/namespace/name`, or `file:<path>` when the file could not be read at all. */
  rule: string;
  errors: Array<ConfigError | ModelIssue>;
  /** Where the version in force comes from (`file:line`), or undefined when nothing is. */
  inForce?: string;
}

/** `memo`: what earlier builds kept, owned by the caller (the control plane keeps one); without one, from scratch. */
export function compile(load: LoadResult, previous: readonly ConfigObject[] = [], memo: ModelMemo = new ModelMemo(), mesh: MeshSettings = DEFAULT_MESH): MeshState {
  let objects = [...load.objects];
  let result = buildModel(objects, load.networkGateways, memo, mesh);
  // An object whose newest text failed validation is stood in for by its previous version; what
  // the model finds wrong with that old version is not news, and its positions may be gone.
  const stale = new Set(load.errors.filter((e) => e.kind && e.name).map((e) => `${e.kind}/${e.namespace ?? 'default'}/${e.name}`));
  const fresh = (e: ModelIssue) => !stale.has(e.key);
  const errors: Array<ConfigError | ModelIssue> = [...load.errors, ...result.errors.filter(fresh)];
  const rejected = new Set(result.rejected);
  // Put back the last good version of each rejected rule; repeat in case that changes others.
  const before = new Map(result.rejected.size ? previous.map((o) => [o.key, o]) : []);
  for (let round = 0; round < 3 && result.rejected.size; round++) {
    const swapped = objects.map((o) => (result.rejected.has(o.key) && before.get(o.key) && before.get(o.key) !== o ? before.get(o.key)! : o));
    if (swapped.every((o, i) => o === objects[i])) break;
    objects = swapped;
    result = buildModel(objects, load.networkGateways, memo, mesh);
  }
  const accepted = objects.filter((o) => !result.rejected.has(o.key));
  for (const e of result.errors.filter(fresh)) if (!errors.some((x) => sameIssue(x, e))) errors.push(e);
  for (const k of result.rejected) rejected.add(k);
  errors.sort((a, b) => compareText(a.file, b.file) || a.line - b.line || a.col - b.col);
  const rejections = rejectionsOf(errors, rejected, accepted);
  return { model: result.model, accepted, errors, warnings: [...result.model.warnings], rejected: rejections.map((r) => r.rule), rejections };
}

function keyOf(e: ConfigError | ModelIssue): string | undefined {
  if ('key' in e) return e.key;
  return e.kind && e.name ? `${e.kind}/${e.namespace ?? 'default'}/${e.name}` : undefined;
}

/** Every rule whose newest version is not in force, with its errors, sorted by rule. */
function rejectionsOf(errors: ReadonlyArray<ConfigError | ModelIssue>, modelRejected: ReadonlySet<string>, accepted: readonly ConfigObject[]): Rejection[] {
  const inForce = new Map(accepted.map((o) => [o.key, o]));
  const byRule = new Map<string, Rejection>();
  const add = (rule: string, e: ConfigError | ModelIssue | undefined) => {
    let r = byRule.get(rule);
    if (!r) {
      const o = inForce.get(rule);
      byRule.set(rule, (r = { rule, errors: [], ...(o ? { inForce: `${o.source.file}:${o.source.line}` } : {}) }));
    }
    if (e && !r.errors.includes(e)) r.errors.push(e);
  };
  for (const e of errors) {
    const key = keyOf(e);
    if (key) {
      // A model error on a rule in force is about its other version (rejected above) or a warning-like
      // problem of the stand-in; only rejected keys and input errors count.
      if ('key' in e && !modelRejected.has(key)) continue;
      add(key, e);
    } else if ((e as ConfigError).wholeFile) {
      // None of the file's rules could be read: each of its objects still in force is a stand-in.
      const held = accepted.filter((o) => o.source.file === e.file);
      for (const o of held) add(o.key, e);
      if (held.length === 0) add(`file:${e.file}`, e);
    }
  }
  for (const k of modelRejected) add(k, undefined);
  return [...byRule.values()].sort((a, b) => compareText(a.rule, b.rule));
}

function sameIssue(a: ConfigError | ModelIssue, b: ModelIssue): boolean {
  return a.file === b.file && a.line === b.line && a.col === b.col && a.message === b.message;
}

export function formatIssue(e: ConfigError | ModelIssue): string {
  const where = `${e.file}:${e.line}:${e.col} ${e.path ? `${e.path}: ` : ''}${e.message}`;
  if ('key' in e) return `${where} (${e.key.replace('/', ' ')})`;
  return e.kind && e.name ? `${where} (${e.kind} ${e.namespace ?? 'default'}/${e.name})` : where;
}
