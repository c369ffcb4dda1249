// Loaded rules -> model, with the "last good version" rule applied to cross-object errors too:
// when a new version of a rule is rejected (say it routes to a subset that does not exist), the
// version accepted before stays in force, and the rest of the mesh moves on.
import type { ConfigError, ConfigObject, LoadResult } from './config/types.ts';
import { compareText } from './model/compare.ts';
import { buildModel, type ModelMemo } from './model/build.ts';
import type { Model, ModelIssue } from './model/types.ts';

export interface MeshState {
  model: Model;
  /** Objects in force (after substituting last good versions for rejected ones). */
  accepted: ConfigObject[];
  /** Schema errors from the files and cross-object errors from the model, in file order. */
  errors: Array<ConfigError | ModelIssue>;
  warnings: ModelIssue[];
  /** Keys of rules whose newest version is not in force. */
  rejected: string[];
}

/** `memo`: what earlier builds kept (default: one shared by all builds); a new ModelMemo builds from scratch. */
export function compile(load: LoadResult, previous: readonly ConfigObject[] = [], memo?: ModelMemo): MeshState {
  let objects = [...load.objects];
  let result = buildModel(objects, load.networkGateways, memo);
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
    result = buildModel(objects, load.networkGateways, memo);
  }
  const accepted = objects.filter((o) => !result.rejected.has(o.key));
  for (const e of result.errors.filter(fresh)) if (!errors.some((x) => sameIssue(x, e))) errors.push(e);
  for (const k of result.rejected) rejected.add(k);
  errors.sort((a, b) => compareText(a.file, b.file) || a.line - b.line || a.col - b.col);
  return { model: result.model, accepted, errors, warnings: [...result.model.warnings], rejected: [...rejected].sort() };
}

function sameIssue(a: ConfigError | ModelIssue, b: ModelIssue): boolean {
  return a.file === b.file && a.line === b.line && a.col === b.col && a.message === b.message;
}

export function formatIssue(e: ConfigError | ModelIssue): string {
  const where = `${e.file}:${e.line}:${e.col} ${e.path ? `${e.path}: ` : ''}${e.message}`;
  if ('key' in e) return `${where} (${e.key.replace('/', ' ')})`;
  return e.kind && e.name ? `${where} (${e.kind} ${e.namespace ?? 'default'}/${e.name})` : where;
}
