// One state-of-the-world ADS stream: subscriptions per type, nonces, ACK/NACK bookkeeping, and
// pushes in the order clusters, endpoints, listeners, routes.
import type { Logger } from '../log.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, SECRET, TYPE_ORDER, type ResourceType } from '../translate/type-urls.ts';
import { setVersion, type EncodedResource } from './encoded.ts';
import type { SotwAnswer } from './sotw-answer.ts';
import { sameItems } from '../model/compare.ts';
import { NO_NAMES, SubscriptionPool, type Subscription } from './subscriptions.ts';
import { encodeDiscoveryResponse, resourcesField, type PreEncodedResponse } from './wire.ts';
import { checkLimit } from './limits.ts';
import { GrpcRevivals } from './grpc-revive.ts';
import type { SnapshotCache } from './snapshot-cache.ts';
import { StreamBase, type RequestNode, type StreamOptions, type TypeStateCommon, type TypeStatus } from './stream-common.ts';

export interface DiscoveryRequest {
  version_info?: string;
  node?: RequestNode;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export type { TypeStatus };

interface TypeState extends TypeStateCommon {
  /** The subscribed names, shared with every stream subscribed to the same set (see `subscribe`). */
  sub: Subscription;
  /** The last response: its answer, and what the client holds after it (for config dumps). */
  sent?: { answer: SotwAnswer; all: ReadonlyMap<string, EncodedResource>; wildcard: boolean; sorted: readonly string[] };
  /** The snapshot map this type was last brought up to date with. */
  seen?: ReadonlyMap<string, EncodedResource>;
  /** gRPC Listeners and Clusters only: see grpc-revive.ts. */
  revive?: GrpcRevivals;
}

function heldResources(sent: NonNullable<TypeState['sent']>): EncodedResource[] {
  return sent.wildcard ? [...sent.all.values()] : sent.sorted.flatMap((n) => sent.all.get(n) ?? []);
}

export interface AdsStreamOptions extends StreamOptions {
  /** Where subscriptions are shared with other streams (its AdsServer's); a pool of its own if not given. */
  subscriptions?: SubscriptionPool;
}

export class AdsStream extends StreamBase<TypeState, PreEncodedResponse> {
  readonly protocol = 'sotw' as const;
  private readonly subscriptions: SubscriptionPool;

  constructor(cache: SnapshotCache, send: (r: PreEncodedResponse) => void, log: Logger, options: AdsStreamOptions = {}) {
    super(cache, send, log, options);
    this.subscriptions = options.subscriptions ?? new SubscriptionPool();
  }

  protected subscribedNames(state: TypeState): ReadonlySet<string> {
    return state.sub.names;
  }

  /** The resources of `type` the client holds after the last response (SotW routes and
   * endpoints are sent as what changed, so this is the whole set at the sent version). */
  sent(type: string): { version: string; resources?: EncodedResource[] } | undefined {
    const s = this.types.get(type);
    return s?.sentVersion === undefined ? undefined : { version: s.sentVersion, ...(s.sent ? { resources: heldResources(s.sent) } : {}) };
  }

  /** The stream ended: its shared subscriptions are released, and what its log limiter left out is told. */
  override close(): void {
    for (const state of this.types.values()) {
      this.subscriptions.unsubscribe(state.sub);
      state.sub = NO_NAMES;
    }
    super.close();
  }

  onRequest(req: DiscoveryRequest): void {
    const type = this.begin(req);
    if (!type || !this.proxy) return;
    let state = this.types.get(type);
    const nonce = req.response_nonce ?? '';
    // A request answering an older response is stale: the client will answer the latest too.
    if (state && nonce !== '' && nonce !== state.sentNonce) return;
    // A request is the whole subscription: the per-request limit is the per-stream one too.
    // (Counted without decoding the names when the request was read by hand.)
    const count = (req as { names_count?: number }).names_count ?? req.resource_names?.length ?? 0;
    checkLimit(count, this.limits.maxNamesPerRequest, `resource names in one request of ${type}`, 'maxNamesPerRequest');
    checkLimit(count, this.limits.maxNamesPerStream, `resource names this stream subscribes to of ${type}`, 'maxNamesPerStream');
    if (!state) {
      // Every field from the start: tens of thousands of these keep one shape.
      state = { wildcard: false, sub: NO_NAMES, requested: false, sentVersion: undefined, sentNonce: undefined, ackedVersion: undefined, nack: undefined, generation: undefined, sent: undefined, seen: undefined, revive: undefined };
      this.types.set(type, state);
    }
    const firstRequest = !state.requested;
    state.requested = true;
    // Only a nonce this stream sent makes a request an ACK or NACK. A first request quoting another
    // (a client's bug, or a lie) is taken as a plain initial request: its version is not believed.
    const answers = nonce !== '' && nonce === state.sentNonce;
    // A proxy reconnecting (say, after a control-plane restart) names the version it has. Versions
    // are content hashes, so if ours is the same, it already has this config: nothing to send.
    // Not so for gRPC: it names the last version it got of the type, and drops a resource as soon
    // as it stops watching it, so it may be asking again for resources of that version.
    if (firstRequest && nonce === '' && req.version_info && this.proxy.kind !== 'grpc') {
      state.sentVersion = req.version_info;
      state.ackedVersion = req.version_info;
    }
    // grpc-js-xds can miss a Listener or Cluster coming back after it was left out (grpc-revive.ts).
    if (firstRequest && this.proxy.kind === 'grpc' && (type === LISTENER || type === CLUSTER)) {
      state.revive = new GrpcRevivals(nonce === '' && !!req.version_info);
    }
    // Most requests are ACKs repeating the names of the last request, in the same order: compared
    // as encoded bytes when the request was read by hand (wire.ts), without decoding the names.
    const sub = state.sub;
    const raw = (req as { names_bytes?: Buffer }).names_bytes;
    let same = false;
    if (!firstRequest) {
      if (raw && sub.bytes) same = raw.equals(sub.bytes);
      else {
        same = sameItems(req.resource_names ?? [], sub.order);
        if (same && raw) this.subscriptions.rememberBytes(sub, raw);
      }
    }
    const names = same ? sub.order : (req.resource_names ?? []);
    // Legacy wildcard: an empty first request for listeners or clusters means "everything", and
    // later empty requests keep it so. Otherwise an empty list unsubscribes from everything (gRPC
    // does that name by name when it closes).
    const legacyWildcard = names.length === 0 && (type === LISTENER || type === CLUSTER) && (firstRequest || state.wildcard);
    const wildcard = same ? state.wildcard : names.includes('*') || legacyWildcard;
    const wanted = wildcard ? names.filter((n) => n !== '*') : names;
    // Else compare without sorting.
    const held = state.sub.names;
    const changed = !same && (wildcard !== state.wildcard || wanted.length !== held.size || wanted.some((n) => !held.has(n)));
    if (changed) {
      state.wildcard = wildcard;
      const previous = state.sub;
      state.sub = this.subscriptions.subscribe(wanted, wildcard ? undefined : raw);
      this.subscriptions.unsubscribe(previous);
    }

    if (answers && req.error_detail) {
      const sent = state.sent;
      this.nacked(state, type, nonce, req.error_detail.message ?? '', () => ({ resources: sent?.answer.resources.map((r) => r.name) }));
    } else if (answers) this.acked(state, type, req.version_info ?? '');
    // A changed subscription is always answered, even with the version sent before: the client
    // forgot the names it left, and may have asked for them again.
    if (!(firstRequest || changed)) return;
    if (type === SECRET) this.pushSecrets(changed && !firstRequest, false);
    else this.pushType(type, changed && !firstRequest, false);
  }

  /** Sends every requested type whose content changed for this proxy, in ADS push order. */
  push(): void {
    if (!this.proxy || !this.cache.ready) return;
    const snap = this.cache.snapshotFor(this.proxy);
    // What changed since the group's previous snapshot: a type whose last answer came from that
    // snapshot and whose names are untouched would get the same answer, so it is not asked again.
    const lineage = this.cache.lineageOf(snap);
    let clustersSent = false;
    for (const type of TYPE_ORDER) {
      const state = this.types.get(type);
      if (!state?.requested) continue;
      // Envoy re-creates every cluster a CDS update touches and keeps it warming until endpoints
      // arrive for it; the endpoints may be unchanged, so they are sent again after each CDS push.
      const force = type === ENDPOINTS && clustersSent && this.proxy.kind === 'envoy';
      if (!force && lineage && state.seen === lineage.before[type] && !this.subscriptions.touches(lineage.changed[type], state.wildcard, state.sub)) {
        state.seen = snap[type];
        state.generation = this.cache.generation;
        continue;
      }
      const sent = this.pushType(type, force, true);
      if (type === CLUSTER) clustersSent = sent;
    }
    if (this.types.get(SECRET)?.requested) this.pushSecrets(false, true);
  }

  /**
   * SDS secrets (credentialName): the subscribed names this proxy may read, answered per stream
   * (few names, rarely changing); sent when their content changed. A name that does not exist (or
   * is not this proxy's to read) is left out, so Envoy keeps waiting for it, as with Istio.
   */
  private pushSecrets(force: boolean, sinceLast: boolean): boolean {
    const state = this.types.get(SECRET);
    if (!this.proxy || !state || !this.cache.ready) return false;
    state.generation = this.cache.generation;
    if (!state.wildcard && state.sub.names.size === 0) return false;
    const all = this.cache.secretsFor(this.proxy);
    const resources = state.wildcard ? [...all.values()] : state.sub.sorted.flatMap((n) => all.get(n) ?? []);
    const version = setVersion(resources);
    if ((version === state.sentVersion && !force) || resources.length === 0) return false;
    const nonce = `s${++this.nonceCounter}`;
    const body = () => resourcesField(resources);
    const wire = encodeDiscoveryResponse({ version_info: version, type_url: SECRET, nonce, body: body() });
    state.sentVersion = version;
    state.sentNonce = nonce;
    state.sent = { answer: { version, resources, body, nonce, wire }, all, wildcard: state.wildcard, sorted: state.sub.sorted };
    this.send({ preEncoded: true, wire });
    this.observer?.sent(this, SECRET, sinceLast);
    return true;
  }

  /**
   * Sends the type if its content changed for this proxy (or `force`); returns whether it sent.
   * On a push (`sinceLast`), routes and endpoints carry only what changed since the stream's last
   * version; listeners and clusters are always complete, as SotW requires.
   */
  private pushType(type: ResourceType, force: boolean, sinceLast: boolean): boolean {
    const state = this.types.get(type);
    if (!this.proxy || !state || !this.cache.ready) return false;
    state.generation = this.cache.generation;
    // Subscribed to nothing (gRPC unsubscribes name by name when it closes): nothing to send.
    if (!state.wildcard && state.sub.names.size === 0) return false;
    const snap = this.cache.snapshotFor(this.proxy);
    state.seen = snap[type];
    const partial = sinceLast && !force && (type === ROUTE_CONFIG || type === ENDPOINTS) ? state.sentVersion : undefined;
    const answer = this.cache.sotwAnswer(snap, type, { wildcard: state.wildcard, names: state.sub.sorted, namesKey: state.sub.key, nameSet: state.sub.names, since: partial, held: state.sent?.answer });
    // The client may hold some of these as "does not exist": the prelude makes it look again.
    const prelude = state.revive?.prelude(answer, state.sent?.answer, state.sub.names);
    if (answer.version === state.sentVersion && !force && !prelude) return false;
    // Listeners and clusters are sent complete, so an empty answer tells the client a name does not
    // exist (instead of a 15 s wait); routes and endpoints are per name and absence says nothing.
    if (answer.resources.length === 0 && type !== LISTENER && type !== CLUSTER) return false;
    // A forced resend of the same answer needs a nonce of its own, so the client's reply to it is
    // not mistaken for a reply to the previous one; that one-off is encoded for this stream alone.
    const again = state.sentNonce === answer.nonce;
    const nonce = again ? `${answer.nonce}.${++this.nonceCounter}` : answer.nonce;
    if (!again) answer.wire ??= encodeDiscoveryResponse({ version_info: answer.version, type_url: type, nonce, body: answer.body() });
    const wire = again ? encodeDiscoveryResponse({ version_info: answer.version, type_url: type, nonce, body: answer.body() }) : answer.wire!;
    state.sentVersion = answer.version;
    state.sentNonce = nonce;
    // Only this type's map is kept (not the whole snapshot), so a type that stops changing does not
    // pin old generations of the others.
    state.sent = { answer, all: snap[type], wildcard: state.wildcard, sorted: state.sub.sorted };
    if (prelude) this.send({ preEncoded: true, wire: encodeDiscoveryResponse({ version_info: prelude.version, type_url: type, nonce: prelude.nonce, body: prelude.body() }) });
    this.send({ preEncoded: true, wire });
    this.observer?.sent(this, type, sinceLast);
    return true;
  }
}
