// One incremental (delta) ADS stream: per-resource versions, subscribe/unsubscribe mid-stream,
// wildcard and named subscriptions, removals, and initial_resource_versions on reconnect (only
// what changed while the proxy was away is sent, plus what was removed).
import { CLUSTER, ENDPOINTS, LISTENER, SECRET } from '../translate/type-urls.ts';
import { compareText } from '../model/compare.ts';
import { encodeDeltaResponse, type PreEncodedResponse } from './wire.ts';
import { halves, SharedNames } from './shared-names.ts';
import type { DeltaAnswer } from './snapshot-cache.ts';
import { checkLimit } from './limits.ts';
import { formatSetVersion, setVersion, type EncodedResource } from './encoded.ts';
import { STREAM_TYPES, StreamBase, type RequestNode, type TypeStateCommon, type XdsType } from './stream-common.ts';

/** Delta answers kept per generation for streams to share. */
const MAX_SHARED_ANSWERS = 512;

export interface DeltaDiscoveryRequest {
  node?: RequestNode;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export type DeltaDiscoveryResponse = PreEncodedResponse;

/** The two 32-bit halves of a version string, for the XOR that versions a set (our 16-hex hashes read directly). */
function versionHalves(v: string): [number, number] {
  if (v.length === 16) {
    const hi = parseInt(v.slice(0, 8), 16);
    const lo = parseInt(v.slice(8), 16);
    if (!Number.isNaN(hi) && !Number.isNaN(lo)) return [hi, lo];
  }
  // A client's initial version may be anything.
  return halves(v);
}

/**
 * What the client holds of one type: name -> version. Kept as the snapshot map it was last brought
 * in line with (`base`: it holds that version of every name it wants there) plus the few names that
 * differ (`over`; null: it holds none), so a full-mesh sidecar's thousands of resources cost a
 * stream a reference, not a map of its own. The XOR of what it holds versions the set.
 */
class Held {
  base: ReadonlyMap<string, EncodedResource> | undefined;
  readonly over = new Map<string, string | null>();
  private hi = 0;
  private lo = 0;
  private count = 0;

  constructor(private readonly wants: (name: string) => boolean) {}

  get(name: string): string | undefined {
    const o = this.over.get(name);
    if (o !== undefined) return o ?? undefined;
    return this.base && this.wants(name) ? this.base.get(name)?.hash : undefined;
  }

  private mix(v: string | undefined, by: 1 | -1): void {
    if (v === undefined) return;
    const [hi, lo] = versionHalves(v);
    this.hi ^= hi;
    this.lo ^= lo;
    this.count += by;
  }

  set(name: string, version: string): void {
    this.mix(this.get(name), -1);
    this.mix(version, 1);
    if (this.base && this.wants(name) && this.base.get(name)?.hash === version) this.over.delete(name);
    else this.over.set(name, version);
  }

  delete(name: string): void {
    this.mix(this.get(name), -1);
    if (this.base && this.wants(name) && this.base.has(name)) this.over.set(name, null);
    else this.over.delete(name);
  }

  /** The client now holds `all`'s version of every name it wants there, and of no other it wants. */
  rebase(all: ReadonlyMap<string, EncodedResource>): void {
    this.base = all;
    // Names it holds but no longer wants (a wildcard it left) stay as they are.
    for (const n of this.over.keys()) if (this.wants(n)) this.over.delete(n);
  }

  /** Before what the client wants changes other than name by name (a wildcard): every entry made explicit. */
  materialize(): void {
    const entries = [...this.entries()];
    this.base = undefined;
    this.over.clear();
    for (const [n, v] of entries) this.over.set(n, v);
  }

  *entries(): IterableIterator<[string, string]> {
    for (const [n, v] of this.over) if (v !== null) yield [n, v];
    if (this.base) for (const [n, r] of this.base) if (!this.over.has(n) && this.wants(n)) yield [n, r.hash];
  }

  version(): string {
    return formatSetVersion(this.count, this.hi, this.lo);
  }
}

interface DeltaTypeState extends TypeStateCommon {
  names: SharedNames;
  /** What the client has (from our responses or its initial_resource_versions). */
  known: Held;
  /** The snapshot's resources of this type at the last response (for config dumps). */
  sentFrom?: ReadonlyMap<string, EncodedResource>;
}

export class DeltaStream extends StreamBase<DeltaTypeState, DeltaDiscoveryResponse> {
  readonly protocol = 'delta' as const;

  protected subscribedNames(state: DeltaTypeState): ReadonlySet<string> {
    return state.names.view();
  }

  /** The resources of `type` the client holds after the last response. */
  sent(type: string): { version: string; resources?: EncodedResource[] } | undefined {
    const s = this.types.get(type);
    if (s?.sentVersion === undefined) return undefined;
    const resources = [...s.known.entries()].flatMap(([name, hash]) => {
      const r = s.sentFrom?.get(name);
      return r && r.hash === hash ? [r] : [];
    });
    return { version: s.sentVersion, resources: resources.sort((a, b) => compareText(a.name, b.name)) };
  }

  onRequest(req: DeltaDiscoveryRequest): void {
    const type = this.begin(req);
    if (!type) return;
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    const initial = Object.entries(req.initial_resource_versions ?? {});
    checkLimit(subscribe.length + unsubscribe.length, this.limits.maxNamesPerRequest, `resource names to subscribe and unsubscribe in one request of ${type}`, 'maxNamesPerRequest');
    checkLimit(initial.length, this.limits.maxNamesPerRequest, `initial_resource_versions in one request of ${type}`, 'maxNamesPerRequest');
    let state = this.types.get(type);
    const first = !state;
    if (!state) {
      const s: DeltaTypeState = { wildcard: false, names: new SharedNames(), known: new Held((n) => s.wildcard || s.names.has(n)), requested: true };
      state = s;
      this.types.set(type, state);
    }
    const nonce = req.response_nonce ?? '';
    // ACK/NACK bookkeeping only for the latest response; but subscription changes carried by a
    // request with an older nonce are still honoured (unlike SotW, they are not repeated).
    if (nonce !== '' && nonce === state.sentNonce) {
      if (req.error_detail) this.nacked(state, type, nonce, req.error_detail.message ?? '');
      else this.acked(state, type, state.sentVersion);
    }
    if (first) {
      for (const [name, version] of initial) state.known.set(name, version);
      // An empty first subscription for listeners or clusters is the legacy wildcard.
      if (subscribe.length === 0 && (type === LISTENER || type === CLUSTER)) state.wildcard = true;
    }
    const added: string[] = [];
    let wildcardAdded = false;
    // Names as the snapshot spells them: one string per resource name, not one per stream.
    const current = subscribe.length && this.proxy && this.cache.ready && type !== SECRET ? this.cache.snapshotFor(this.proxy)[type] : undefined;
    for (const asked of subscribe) {
      const n = current?.get(asked)?.name ?? asked;
      if (n === '*') {
        if (!state.wildcard) state.known.materialize();
        wildcardAdded = !state.wildcard;
        state.wildcard = true;
      } else if (!state.names.has(n)) {
        // Held by the client only if it said so (or was sent it), whatever the base map has.
        if (!state.wildcard && !state.known.over.has(n) && state.known.base?.has(n)) state.known.over.set(n, null);
        state.names.add(n);
        added.push(n);
      }
    }
    for (const n of unsubscribe) {
      if (n === '*') {
        if (state.wildcard) state.known.materialize();
        state.wildcard = false;
      } else if (!state.wildcard) {
        // The client drops what it unsubscribed from; it must not be told about it again.
        state.known.delete(n);
        state.known.over.delete(n);
      }
      if (n !== '*') state.names.delete(n);
    }
    checkLimit(state.names.size, this.limits.maxNamesPerStream, `resource names this stream subscribes to of ${type}`, 'maxNamesPerStream');
    if (subscribe.length || unsubscribe.length) state.names.settle();
    if (first || wildcardAdded) this.pushType(type, new Set(), new Set(added));
    // Only new names: what else the client holds is up to date (pushes keep it so).
    else if (added.length) this.pushType(type, new Set(), new Set(added), false, added);
  }

  push(): void {
    if (!this.proxy) return;
    let clustersSent: string[] = [];
    for (const type of STREAM_TYPES) {
      if (!this.types.get(type)?.requested) continue;
      // As in SotW: Envoy re-warms clusters a CDS update touches and waits for their endpoints.
      const force = type === ENDPOINTS && this.proxy.kind === 'envoy' ? new Set(clustersSent) : new Set<string>();
      const sent = this.pushType(type, force, new Set(), true);
      if (type === CLUSTER) clustersSent = sent;
    }
  }

  private wants(state: DeltaTypeState, name: string): boolean {
    return state.wildcard || state.names.has(name);
  }

  /**
   * The response for these resources and removals: streams in the same state after a change (every
   * sidecar of a group, usually) get one encoding, found by the XOR of the resources' hashes and
   * checked resource by resource.
   */
  private answer(type: XdsType, version: string, resources: EncodedResource[], removed: string[]): DeltaAnswer {
    const key = `${type}|${version}|${setVersion(resources)}|${removed.join('\n')}`;
    const answers = this.cache.deltaAnswers;
    const hit = answers.get(key);
    if (hit && hit.resources.length === resources.length && hit.resources.every((r, i) => r === resources[i])) return hit;
    const nonce = this.cache.nextDeltaNonce();
    const made: DeltaAnswer = { resources, removed, nonce, wire: encodeDeltaResponse({ version, type_url: type, nonce, resources, removed }) };
    // Bounded: a generation with many distinct answers (stream states) keeps only the first ones.
    if (!hit && answers.size < MAX_SHARED_ANSWERS) answers.set(key, made);
    return made;
  }

  /**
   * The names to look at for a push of everything that changed: when the client is in line with
   * the snapshot this one replaced, only the names that changed between the two (and the few the
   * client holds otherwise); undefined when the whole snapshot must be walked.
   */
  private changedSince(state: DeltaTypeState, type: XdsType, all: ReadonlyMap<string, EncodedResource>): Iterable<string> | undefined {
    const held = state.known;
    if (!held.base) return undefined;
    const extra = held.over.keys();
    if (held.base === all) return extra;
    if (type === SECRET) return undefined;
    const lineage = this.cache.lineageOf(this.cache.snapshotFor(this.proxy!));
    if (!lineage || lineage.before[type] !== held.base) return undefined;
    return new Set([...lineage.changed[type], ...extra]);
  }

  /**
   * Sends what changed for this type, plus the `force`d names even if unchanged, and reports
   * `subscribed` names that do not exist as removed. With `only`, just those names are looked at
   * (a subscription that grew), not the whole snapshot. Returns the names sent.
   */
  private pushType(type: XdsType, force: Set<string>, subscribed: Set<string>, onChange = false, only?: readonly string[]): string[] {
    const state = this.types.get(type);
    if (!this.proxy || !state || !this.cache.ready) return [];
    state.generation = this.cache.generation;
    // Secrets (credentialName) come from the credential store, filtered by who may read them.
    const all = type === SECRET ? this.cache.secretsFor(this.proxy) : this.cache.snapshotFor(this.proxy)[type];
    const held = state.known;
    const changed: EncodedResource[] = [];
    // A set: a request may name tens of thousands of names that do not exist.
    const removed = new Set<string>();
    const look = (name: string) => {
      const r = all.get(name);
      if (r) {
        if (this.wants(state, name) && (held.get(name) !== r.hash || force.has(name))) changed.push(r);
      } else if (held.get(name) !== undefined) removed.add(name);
    };
    const since = only ? undefined : this.changedSince(state, type, all);
    if (only) for (const n of only) look(n);
    else if (since) {
      for (const n of since) look(n);
      for (const n of force) if (!removed.has(n)) look(n);
    } else {
      for (const r of all.values()) if (this.wants(state, r.name) && (held.get(r.name) !== r.hash || force.has(r.name))) changed.push(r);
      for (const [name] of held.entries()) if (!all.has(name)) removed.add(name);
    }
    // A named subscription to something that does not exist is answered as removed, so the client
    // does not wait for it.
    for (const name of subscribed) if (!all.has(name)) removed.add(name);
    // After a walk of everything that changed the client is in line with this snapshot.
    const inLine = !only;
    if (changed.length === 0 && removed.size === 0) {
      if (inLine) held.rebase(all);
      return [];
    }
    changed.sort((a, b) => compareText(a.name, b.name));
    const removedNames = [...removed].sort();
    for (const r of changed) held.set(r.name, r.hash);
    for (const n of removedNames) held.delete(n);
    if (inLine) held.rebase(all);
    const version = held.version();
    const answer = this.answer(type, version, changed, removedNames);
    state.sentNonce = answer.nonce;
    state.sentVersion = version;
    state.sentFrom = all;
    this.send({ preEncoded: true, wire: answer.wire });
    this.observer?.sent(this, type, onChange);
    return changed.map((r) => r.name);
  }
}
