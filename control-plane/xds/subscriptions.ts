// Subscriptions shared by SotW streams: a set of names is held once, however many streams ask for
// it, and indexed by name (which subscriptions a change touches) and by its encoded form (an ACK
// repeating it is recognised without decoding). Counted references let them go with their last
// stream.
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

const subscriptions = new Map<string, Subscription>();
export const NO_NAMES: Subscription = { key: '', sorted: [], names: new Set(), order: [], refs: 0 };

// Also by the encoded names of the request that created them: streams of one workload ask in the
// same order, and finding theirs by bytes skips sorting and joining the names.
const subscriptionsByBytes = new Map<string, Subscription>();

export function subscribe(names: readonly string[], bytes: Buffer | undefined): Subscription {
  if (names.length === 0) return NO_NAMES;
  let sub = bytes && subscriptionsByBytes.get(bytes.toString('latin1'));
  if (!sub) {
    const sorted = [...new Set(names)].sort();
    const key = sorted.join('\n');
    sub = subscriptions.get(key);
    if (!sub) {
      subscriptions.set(key, (sub = { key, sorted, names: new Set(sorted), order: names, refs: 0 }));
      for (const n of sorted) {
        let subs = subscriptionsByName.get(n);
        if (!subs) subscriptionsByName.set(n, (subs = new Set()));
        subs.add(sub);
      }
    }
    if (bytes && sameItems(names, sub.order)) rememberBytes(sub, bytes);
  }
  sub.refs++;
  return sub;
}

export function unsubscribe(sub: Subscription): void {
  if (sub === NO_NAMES || --sub.refs > 0) return;
  subscriptions.delete(sub.key);
  if (sub.bytes) subscriptionsByBytes.delete(sub.bytes.toString('latin1'));
  for (const n of sub.sorted) {
    const subs = subscriptionsByName.get(n);
    subs?.delete(sub);
    if (subs?.size === 0) subscriptionsByName.delete(n);
  }
}

/** How many distinct subscriptions are held, and index entries for them (for tests: none leak). */
export function subscriptionPoolSize(): { subscriptions: number; byBytes: number; names: number } {
  return { subscriptions: subscriptions.size, byBytes: subscriptionsByBytes.size, names: subscriptionsByName.size };
}

// Which subscriptions name each resource, so that the ones a change touches are found once per
// change (from its few changed names) instead of once per stream.
const subscriptionsByName = new Map<string, Set<Subscription>>();
const touchedBy = new WeakMap<ReadonlySet<string>, Set<Subscription>>();

/** Whether a change (the names that changed in one type) touches a stream's subscription. */
export function touches(changed: ReadonlySet<string>, wildcard: boolean, sub: Subscription): boolean {
  if (changed.size === 0) return false;
  if (wildcard) return true;
  let subs = touchedBy.get(changed);
  if (!subs) {
    subs = new Set();
    for (const n of changed) for (const sub of subscriptionsByName.get(n) ?? []) subs.add(sub);
    touchedBy.set(changed, subs);
  }
  return subs.has(sub);
}


/** Records `bytes` as the encoded form of `sub`'s names (seen in a hand-read request). */
export function rememberBytes(sub: Subscription, bytes: Buffer): void {
  if (sub === NO_NAMES || sub.bytes) return;
  sub.bytes = Buffer.from(bytes);
  subscriptionsByBytes.set(sub.bytes.toString('latin1'), sub);
}
