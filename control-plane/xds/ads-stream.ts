// One state-of-the-world ADS stream: subscriptions per type, nonces, ACK/NACK bookkeeping, and
// pushes in the order clusters, endpoints, listeners, routes.
import type { Logger } from '../log.ts';
import type { Proxy } from '../translate/proxy.ts';
import { CLUSTER, ENDPOINTS, LISTENER, TYPE_ORDER, type ResourceType } from '../translate/type-urls.ts';
import { contentHash } from './hash.ts';
import type { EncodedResource, SnapshotCache } from './snapshot-cache.ts';
import { proxyFromRequest, typeStatus, type RequestNode, type TypeStatus } from './stream-common.ts';

export interface DiscoveryRequest {
  version_info?: string;
  node?: RequestNode;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface DiscoveryResponse {
  version_info: string;
  resources: Array<{ type_url: string; value: Buffer }>;
  type_url: string;
  nonce: string;
  control_plane: { identifier: string };
}

export type { TypeStatus };

interface TypeState {
  wildcard: boolean;
  names: Set<string>;
  /** Whether the client has asked for this type at all: nothing is sent before it does. */
  requested: boolean;
  sentVersion?: string;
  sentNonce?: string;
  sentNames?: string[];
  ackedVersion?: string;
  nack?: { nonce: string; version: string; message: string };
}

export class AdsStream {
  readonly protocol = 'sotw' as const;
  proxy?: Proxy;
  readonly connectedAt = new Date();
  private readonly types = new Map<string, TypeState>();
  private nonceCounter = 0;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly send: (r: DiscoveryResponse) => void,
    private readonly log: Logger,
  ) {}

  status(): Record<string, TypeStatus> {
    return typeStatus(this.types);
  }

  onRequest(req: DiscoveryRequest): void {
    if (!this.proxy) {
      this.proxy = proxyFromRequest(req.node);
      this.log.info({ proxy: this.proxy.id, kind: this.proxy.kind, namespace: this.proxy.namespace }, 'proxy connected');
    }
    const type = req.type_url ?? '';
    if (!(TYPE_ORDER as readonly string[]).includes(type)) {
      this.log.warn({ proxy: this.proxy.id, type }, 'request for a resource type meshpilot does not serve');
      return;
    }
    let state = this.types.get(type);
    const nonce = req.response_nonce ?? '';
    // A request answering an older response is stale: the client will answer the latest too.
    if (state && nonce !== '' && nonce !== state.sentNonce) return;
    if (!state) {
      state = { wildcard: false, names: new Set(), requested: false };
      this.types.set(type, state);
    }
    const names = req.resource_names ?? [];
    const firstRequest = !state.requested;
    state.requested = true;
    // A proxy reconnecting (say, after a control-plane restart) names the version it has. Versions
    // are content hashes, so if ours is the same, it already has this config: nothing to send.
    if (firstRequest && nonce === '' && req.version_info) {
      state.sentVersion = req.version_info;
      state.ackedVersion = req.version_info;
    }
    const before = state.wildcard ? '*' : [...state.names].sort().join(',');
    // Legacy wildcard: an empty first request for listeners or clusters means "everything", and
    // later empty requests keep it so. Otherwise an empty list unsubscribes from everything (gRPC
    // does that name by name when it closes).
    const legacyWildcard = names.length === 0 && (type === LISTENER || type === CLUSTER) && (firstRequest || state.wildcard);
    if (names.includes('*') || legacyWildcard) {
      state.wildcard = true;
      state.names = new Set(names.filter((n) => n !== '*'));
    } else {
      state.wildcard = false;
      state.names = new Set(names);
    }
    const after = state.wildcard ? '*' : [...state.names].sort().join(',');

    if (nonce !== '' && req.error_detail) {
      const message = req.error_detail.message ?? '';
      // Clients repeat a NACK on later requests; log each rejected nonce once.
      if (state.nack?.nonce !== nonce) {
        state.nack = { nonce, version: state.sentVersion ?? '', message };
        this.log.warn({ proxy: this.proxy.id, type, version: state.sentVersion, nonce, resources: state.sentNames, message }, 'proxy rejected config (NACK)');
      }
    } else if (nonce !== '') {
      state.ackedVersion = req.version_info ?? '';
      state.nack = undefined;
    }
    if (firstRequest || before !== after) this.pushType(type as ResourceType);
  }

  /** Sends every requested type whose content changed for this proxy, in ADS push order. */
  push(): void {
    if (!this.proxy) return;
    let clustersSent = false;
    for (const type of TYPE_ORDER) {
      if (!this.types.get(type)?.requested) continue;
      // Envoy re-creates every cluster a CDS update touches and keeps it warming until endpoints
      // arrive for it; the endpoints may be unchanged, so they are sent again after each CDS push.
      const force = type === ENDPOINTS && clustersSent && this.proxy.kind === 'envoy';
      const sent = this.pushType(type, force);
      if (type === CLUSTER) clustersSent = sent;
    }
  }

  /** Sends the type if its content changed for this proxy (or `force`); returns whether it sent. */
  private pushType(type: ResourceType, force = false): boolean {
    const state = this.types.get(type);
    if (!this.proxy || !state || !this.cache.ready) return false;
    // Subscribed to nothing (gRPC unsubscribes name by name when it closes): nothing to send.
    if (!state.wildcard && state.names.size === 0) return false;
    const all = this.cache.snapshotFor(this.proxy)[type];
    const chosen: EncodedResource[] = [];
    if (state.wildcard) chosen.push(...all.values());
    else for (const n of [...state.names].sort()) { const r = all.get(n); if (r) chosen.push(r); }
    const version = contentHash(chosen.map((r) => `${r.name}=${r.hash}`).join('\n'));
    if (version === state.sentVersion && !force) return false;
    // Listeners and clusters are sent complete, so an empty answer tells the client a name does not
    // exist (instead of a 15 s wait); routes and endpoints are per name and absence says nothing.
    if (chosen.length === 0 && type !== LISTENER && type !== CLUSTER) return false;
    const nonce = String(++this.nonceCounter);
    state.sentVersion = version;
    state.sentNonce = nonce;
    state.sentNames = chosen.map((r) => r.name);
    this.send({ version_info: version, resources: chosen.map((r) => r.any), type_url: type, nonce, control_plane: { identifier: 'meshpilot' } });
    return true;
  }
}
