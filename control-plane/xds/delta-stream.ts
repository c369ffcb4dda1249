// One incremental (delta) ADS stream: per-resource versions, subscribe/unsubscribe mid-stream,
// wildcard and named subscriptions, removals, and initial_resource_versions on reconnect (only
// what changed while the proxy was away is sent, plus what was removed).
import { CLUSTER, ENDPOINTS, LISTENER, SECRET } from '../translate/type-urls.ts';
import { compareText } from '../model/compare.ts';
import { contentHash } from './hash.ts';
import { checkLimit } from './limits.ts';
import type { EncodedResource } from './encoded.ts';
import { STREAM_TYPES, StreamBase, type RequestNode, type TypeStateCommon, type XdsType } from './stream-common.ts';

export interface DeltaDiscoveryRequest {
  node?: RequestNode;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: Array<{ name: string; version: string; resource: { type_url: string; value: Buffer } }>;
  type_url: string;
  removed_resources: string[];
  nonce: string;
  control_plane: { identifier: string };
}

interface DeltaTypeState extends TypeStateCommon {
  names: Set<string>;
  /** What the client has: name -> version (from our responses or its initial_resource_versions). */
  known: Map<string, string>;
  /** The snapshot's resources of this type at the last response (for config dumps). */
  sentFrom?: ReadonlyMap<string, EncodedResource>;
}

export class DeltaStream extends StreamBase<DeltaTypeState, DeltaDiscoveryResponse> {
  readonly protocol = 'delta' as const;

  protected subscribedNames(state: DeltaTypeState): ReadonlySet<string> {
    return state.names;
  }

  /** The resources of `type` the client holds after the last response. */
  sent(type: string): { version: string; resources?: EncodedResource[] } | undefined {
    const s = this.types.get(type);
    if (s?.sentVersion === undefined) return undefined;
    const resources = [...s.known].flatMap(([name, hash]) => {
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
      state = { wildcard: false, names: new Set(), known: new Map(), requested: true };
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
    for (const n of subscribe) {
      if (n === '*') {
        wildcardAdded = !state.wildcard;
        state.wildcard = true;
      } else if (!state.names.has(n)) {
        state.names.add(n);
        added.push(n);
      }
    }
    for (const n of unsubscribe) {
      if (n === '*') state.wildcard = false;
      else state.names.delete(n);
      // The client drops what it unsubscribed from; it must not be told about it again.
      if (!state.wildcard || n === '*') state.known.delete(n);
    }
    checkLimit(state.names.size, this.limits.maxNamesPerStream, `resource names this stream subscribes to of ${type}`, 'maxNamesPerStream');
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
    const changed: EncodedResource[] = [];
    const candidates = only ? only.flatMap((n) => all.get(n) ?? []) : all.values();
    for (const r of candidates) {
      if (!this.wants(state, r.name)) continue;
      if (state.known.get(r.name) !== r.hash || force.has(r.name)) changed.push(r);
    }
    // A set: a request may name tens of thousands of names that do not exist.
    const removed = new Set<string>();
    if (!only) for (const name of state.known.keys()) if (!all.has(name)) removed.add(name);
    // A named subscription to something that does not exist is answered as removed, so the client
    // does not wait for it.
    for (const name of subscribed) if (!all.has(name)) removed.add(name);
    if (changed.length === 0 && removed.size === 0) return [];
    changed.sort((a, b) => compareText(a.name, b.name));
    const removedNames = [...removed].sort();
    for (const r of changed) state.known.set(r.name, r.hash);
    for (const n of removedNames) state.known.delete(n);
    const version = contentHash([...state.known].sort(([a], [b]) => compareText(a, b)).map(([n, v]) => `${n}=${v}`).join('\n'));
    const nonce = String(++this.nonceCounter);
    state.sentNonce = nonce;
    state.sentVersion = version;
    state.sentFrom = all;
    this.send({
      system_version_info: version,
      resources: changed.map((r) => ({ name: r.name, version: r.hash, resource: r.any })),
      type_url: type,
      removed_resources: removedNames,
      nonce,
      control_plane: { identifier: 'meshpilot' },
    });
    this.observer?.sent(this, type, onChange);
    return changed.map((r) => r.name);
  }
}
