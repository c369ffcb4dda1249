// Which rules a new config changed, for the 'configuration applied' log line. Objects of files
// that did not change are the same objects, so only re-parsed ones are compared by content.
import type { ConfigObject } from '../config/types.ts';

/** Shown in full up to this many keys per list; beyond, the count says the rest. */
const MAX_LISTED = 20;

export function changedRules(before: readonly ConfigObject[], after: readonly ConfigObject[]): { added?: string[]; changed?: string[]; removed?: string[] } {
  const old = new Map(before.map((o) => [o.key, o]));
  const added: string[] = [];
  const changed: string[] = [];
  for (const o of after) {
    const prev = old.get(o.key);
    old.delete(o.key);
    if (!prev) added.push(o.key);
    else if (prev !== o && JSON.stringify([prev.spec, prev.labels]) !== JSON.stringify([o.spec, o.labels])) changed.push(o.key);
  }
  const removed = [...old.keys()];
  return {
    ...(added.length ? { added: capList(added) } : {}),
    ...(changed.length ? { changed: capList(changed) } : {}),
    ...(removed.length ? { removed: capList(removed) } : {}),
  };
}

/** At most MAX_LISTED keys, then how many more: a log line stays a line. */
export function capList(keys: readonly string[]): string[] {
  return keys.length > MAX_LISTED ? [...keys.slice(0, MAX_LISTED), `... ${keys.length - MAX_LISTED} more`] : [...keys];
}
