// Subscriptions shared by SotW streams: a set of names is held once, however many streams ask for
// it, and indexed by name (which subscriptions a change touches) and by its encoded form (an ACK
// repeating it is recognised without decoding). Counted references let them go with their last
// stream. The pool belongs to its AdsServer (which hands it to its streams), so two servers in one
// process share nothing.
import { sameItems } from '../model/compare.ts';

/**
 * A set of subscribed names: sorted, joined (the identity answers are cached under) and as a set.
 * Proxies of one workload subscribe to the same names, so streams share one of these per distinct
 * set instead of each holding copies: at 10,000 streams that was a large share of the memory, and
 * cache lookups by a shared key string compare by identity.
 */
export interface Subscription {
  key: string;
  sorted: readonly string[];
  names: ReadonlySet<string>;
  /** The names in the order of the request that created it: ACKs usually repeat that order. */
  order: readonly string[];
  /** `order` as encoded in requests (field 3 entries), once a hand-read request has shown it. */
  bytes?: Buffer;
  refs: number;
}

/** The empty subscription: never counted, never indexed, so one constant serves every pool. */
export const NO_NAMES: Subscription = { key: '', sorted: [], names: new Set(), order: [], refs: 0 };

export class SubscriptionPool {
  private subscriptions = new Map<string, Subscription>();
  // Also by the encoded names of the request that created them: streams of one workload ask in the
  // same order, and finding theirs by bytes skips sorting and joining the names.
  private byBytes = new Map<string, Subscription>();
  // Which subscriptions name each resource, so that the ones a change touches are found once per
  // change (from its few changed names) instead of once per stream.
  private byName = new Map<string, Set<Subscription>>();
  private touchedBy = new WeakMap<ReadonlySet<string>, Set<Subscription>>();

  subscribe(names: readonly string[], bytes: Buffer | undefined): Subscription {
    if (names.length === 0) return NO_NAMES;
    let sub = bytes && this.byBytes.get(bytes.toString('latin1'));
    if (!sub) {
      const sorted = [...new Set(names)].sort();
      const key = sorted.join('\n');
      sub = this.subscriptions.get(key);
      if (!sub) {
        this.subscriptions.set(key, (sub = { key, sorted, names: new Set(sorted), order: names, refs: 0 }));
        for (const n of sorted) {
          let subs = this.byName.get(n);
          if (!subs) this.byName.set(n, (subs = new Set()));
          subs.add(sub);
        }
      }
      if (bytes && sameItems(names, sub.order)) this.rememberBytes(sub, bytes);
    }
    sub.refs++;
    return sub;
  }

  unsubscribe(sub: Subscription): void {
    if (sub === NO_NAMES || --sub.refs > 0) return;
    this.subscriptions.delete(sub.key);
    if (sub.bytes) this.byBytes.delete(sub.bytes.toString('latin1'));
    for (const n of sub.sorted) {
      const subs = this.byName.get(n);
      subs?.delete(sub);
      if (subs?.size === 0) this.byName.delete(n);
    }
  }

  /** How many distinct subscriptions are held, and index entries for them (for tests: none leak). */
  size(): { subscriptions: number; byBytes: number; names: number } {
    return { subscriptions: this.subscriptions.size, byBytes: this.byBytes.size, names: this.byName.size };
  }

  /** Whether a change (the names that changed in one type) touches a stream's subscription. */
  touches(changed: ReadonlySet<string>, wildcard: boolean, sub: Subscription): boolean {
    if (changed.size === 0) return false;
    if (wildcard) return true;
    let subs = this.touchedBy.get(changed);
    if (!subs) {
      subs = new Set();
      for (const n of changed) for (const sub of this.byName.get(n) ?? []) subs.add(sub);
      this.touchedBy.set(changed, subs);
    }
    return subs.has(sub);
  }

  /** Records `bytes` as the encoded form of `sub`'s names (seen in a hand-read request). */
  rememberBytes(sub: Subscription, bytes: Buffer): void {
    if (sub === NO_NAMES || sub.bytes) return;
    sub.bytes = Buffer.from(bytes);
    this.byBytes.set(sub.bytes.toString('latin1'), sub);
  }
}
