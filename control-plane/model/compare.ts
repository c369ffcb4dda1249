// Comparisons the model and its memos share. One collator for the sorts: its compare orders
// strings exactly as `a.localeCompare(b)` (default locale and options) does, but localeCompare
// sets up collation on every call, which made sorting thousands of names a large part of a build.
const collator = new Intl.Collator();

export const compareText: (a: string, b: string) => number = collator.compare;

/** Whether two lists hold the very same items in the same order (memos compare by identity). */
export function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A sort that first tries the order it produced last time (items matched by a unique key):
 * between builds that order rarely changes, and checking that it is strictly increasing under
 * `cmp` costs a fraction of a sort. A strictly increasing order is the only sorted one, so the
 * result is exactly what sorting gives.
 */
export class SortedOrder<T> {
  private last: string[] = [];

  constructor(
    private readonly key: (x: T) => string,
    private readonly cmp: (a: T, b: T) => number,
  ) {}

  /** Sorts `items` (in place when it cannot reuse the last order). */
  sort(items: T[]): T[] {
    let out: T[] | undefined;
    if (items.length === this.last.length) {
      const byKey = new Map(items.map((x) => [this.key(x), x]));
      if (byKey.size === items.length) {
        const again = this.last.map((k) => byKey.get(k));
        if (again.every((x, i) => x !== undefined && (i === 0 || this.cmp(again[i - 1]!, x) < 0))) out = again as T[];
      }
    }
    out ??= items.sort(this.cmp);
    this.last = out.map(this.key);
    return out;
  }
}
