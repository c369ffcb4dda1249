// The gRPC side of ADS: accepts state-of-the-world and delta streams, hands their requests to
// AdsStream / DeltaStream, and pushes to every stream when the cache changes.
import * as grpc from '@grpc/grpc-js';
import { envoyService } from './envoy-service.ts';
import type { Logger } from '../log.ts';
import { AdsStream, type DiscoveryRequest } from './ads-stream.ts';
import { DeltaStream, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse } from './delta-stream.ts';
import type { SnapshotCache } from './snapshot-cache.ts';
import { proxyFromRequest, type RequestNode, type XdsObserver } from './stream-common.ts';
import { structToJson } from './struct.ts';
import { LogLimiter } from './log-limiter.ts';
import { grpcServerOptions, LimitError, xdsLimits, type XdsLimits } from './limits.ts';
import { PlainDiscoveryRequest, type PreEncodedResponse } from './wire.ts';
import { PushQueue } from './push-queue.ts';
import { WorkBudget } from './work-budget.ts';
import { SubscriptionPool } from './subscriptions.ts';
import { formatSpiffeId, parseSpiffeId } from '../ca/identity.ts';
import { peerIdentity } from '../ca/peer-identity.ts';
import { listenError } from '../listen-error.ts';

let serviceDefinition: grpc.ServiceDefinition | undefined;

function adsService(): grpc.ServiceDefinition {
  if (serviceDefinition) return serviceDefinition;
  const service = envoyService('envoy/service/discovery/v3/ads.proto', 'envoy.service.discovery.v3.AggregatedDiscoveryService');
  // State-of-the-world responses arrive with their resources already encoded (shared by every
  // stream that gets them); only the small per-stream fields are encoded here.
  const sotw = service.StreamAggregatedResources;
  const encode = sotw.responseSerialize;
  const decode = sotw.requestDeserialize;
  const delta = service.DeltaAggregatedResources;
  const encodeDelta = delta.responseSerialize;
  serviceDefinition = {
    ...service,
    DeltaAggregatedResources: { ...delta, responseSerialize: (r: PreEncodedResponse | object) => ('preEncoded' in r ? r.wire : encodeDelta(r)) },
    StreamAggregatedResources: {
      ...sotw,
      responseSerialize: (r: PreEncodedResponse | object) => ('preEncoded' in r ? r.wire : encode(r)),
      requestDeserialize: (b: Buffer) => PlainDiscoveryRequest.decode(b) ?? decode(b),
    },
  };
  return serviceDefinition;
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<string> {
  const host = address.slice(0, address.lastIndexOf(':'));
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(listenError(address, err)) : resolve(`${host}:${port}`)));
  });
}

/** What the server and the admin API need of a stream, whichever protocol it speaks. */
export type XdsStream = AdsStream | DeltaStream;

/** Metrics hooks (control-plane/metrics.ts). */
export interface AdsObserver extends XdsObserver {
  /** A push round reached every stream: seconds since the config change it carries was applied. */
  pushRoundDone(seconds: number): void;
}

export class AdsServer {
  readonly streams = new Set<XdsStream>();
  /** The names its SotW streams subscribe to, shared between them: this server's alone, living as long as it. */
  readonly subscriptions = new SubscriptionPool();
  readonly limits: XdsLimits;
  private server: grpc.Server;
  /** A flood of refused streams must not become a flood of log lines. */
  private refusals: LogLimiter;
  /** Pushes on config changes: batched, merged while a stream's buffer is full. */
  private pushes: PushQueue<XdsStream>;
  /** Requests and drained buffers are served through it: a bounded amount per turn of the loop. */
  private readonly work = new WorkBudget();
  private unsubscribe: () => void;
  /** Per stream: the SPIFFE ID its verified client certificate proved when it opened (TLS only). */
  private readonly peers = new WeakMap<XdsStream, string>();
  /** Set with `setPeerTrustDomain`: only certificates of this trust domain name a stream's peer. */
  private trustDomain: string | undefined;
  private requireIdentity = false;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly log: Logger,
    private readonly observer?: AdsObserver,
    limits: Partial<XdsLimits> = {},
  ) {
    this.limits = xdsLimits(limits);
    this.server = new grpc.Server(grpcServerOptions(this.limits));
    this.refusals = new LogLimiter(log, this.limits.logEventsPerStream, this.limits.logSummaryMs);
    this.pushes = new PushQueue(
      this.streams,
      (s) => this.safely(s, () => s.push()),
      () => this.observer?.pushRoundDone((performance.now() - this.cache.changedAt) / 1000),
    );
    this.server.addService(adsService(), this.adsImplementation());
    this.unsubscribe = cache.onChange(() => this.pushes.pushAll());
  }

  private adsImplementation(): grpc.UntypedServiceImplementation {
    return {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, PreEncodedResponse>) =>
        this.onStream(call, (send) => new AdsStream(this.cache, send, this.log, { observer: this.observer, limits: this.limits, subscriptions: this.subscriptions })),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) =>
        this.onStream(call, (send) => new DeltaStream(this.cache, send, this.log, { observer: this.observer, limits: this.limits })),
    };
  }

  /**
   * Another service on the xDS port (the CA); before `listen`. On the plaintext listener too only
   * with `plaintext: true` (load reporting, which proxyless gRPC clients send where they get xDS).
   */
  addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation, o: { plaintext?: boolean } = {}): void {
    this.server.addService(service, implementation);
    if (o.plaintext) this.plaintextServices.push([service, implementation]);
  }

  private readonly plaintextServices: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]> = [];

  /**
   * Streams over TLS get their peer's identity from client certificates of this trust domain.
   * With `requireIdentity`, a stream without a verified certificate is refused.
   */
  setPeerTrustDomain(trustDomain: string, requireIdentity = false): void {
    this.trustDomain = trustDomain;
    this.requireIdentity = requireIdentity;
  }

  /** The SPIFFE ID the stream's client certificate proved, if it presented one we verified. */
  peerIdentity(stream: XdsStream): string | undefined {
    return this.peers.get(stream);
  }

  /** Binds `host:port` (port 0 picks a free one) and returns the bound address. Plaintext unless `credentials` say otherwise. */
  listen(address: string, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<string> {
    return bind(this.server, address, credentials).then((bound) => {
      this.listening = true;
      return bound;
    });
  }

  /**
   * A second, plaintext address serving ADS only, for proxyless gRPC clients that cannot do TLS to
   * the xDS server (grpc-js-xds 1.14.1). It is a separate grpc.Server: grpc-js serves every added
   * service on every port a server binds, so the CA (added with `addService`) would otherwise be
   * reachable without TLS. Streams here have no verified peer identity.
   */
  listenPlaintext(address: string): Promise<string> {
    if (this.plain) return Promise.reject(new Error('the plaintext xDS listener is already bound'));
    const plain = new grpc.Server(grpcServerOptions(this.limits));
    plain.addService(adsService(), this.adsImplementation());
    for (const [service, implementation] of this.plaintextServices) plain.addService(service, implementation);
    this.plain = plain;
    return bind(plain, address, grpc.ServerCredentials.createInsecure());
  }

  private plain: grpc.Server | undefined;

  /** False once stopped (for health checks). */
  listening = false;

  async stop(): Promise<void> {
    this.listening = false;
    this.unsubscribe();
    // tryShutdown never finishes while clients hold streams open; ADS streams are long-lived.
    this.server.forceShutdown();
    this.plain?.forceShutdown();
  }

  private onStream<Req, Res, S extends XdsStream & { onRequest(r: Req): void }>(
    call: grpc.ServerDuplexStream<Req, Res>,
    create: (send: (r: Res) => void) => S,
  ): void {
    if (!this.cache.ready) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'meshpilot has not loaded its configuration yet' });
      return;
    }
    if (this.streams.size >= this.limits.maxStreams) {
      this.refusals.warn('stream-refused', { streams: this.streams.size }, 'xDS stream refused: too many streams (maxStreams)');
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `meshpilot serves at most ${this.limits.maxStreams} xDS streams at once (maxStreams)` });
      return;
    }
    const stream: S = create((r) => {
      if (!call.write(r)) this.pushes.blocked(stream);
    });
    this.streams.add(stream);
    if (this.trustDomain) {
      const peer = peerIdentity(call, this.trustDomain);
      if (peer) this.peers.set(stream, formatSpiffeId(peer));
    }
    // Backpressure: while a slow proxy has not read what it was sent, config changes are not
    // queued behind it; it gets the latest state once, when its buffer drains.
    call.on('drain', () => this.work.run(() => this.pushes.drained(stream)));
    // A stream that never says who it is would hold one of the maxStreams slots for nothing.
    const silent = setTimeout(() => {
      if (stream.proxy || !this.streams.has(stream)) return;
      call.emit('error', { code: grpc.status.DEADLINE_EXCEEDED, details: `no first request within ${this.limits.firstRequestMs} ms (firstRequestMs)` });
      done();
    }, this.limits.firstRequestMs);
    silent.unref();
    const done = () => {
      clearTimeout(silent);
      this.pushes.forget(stream);
      if (!this.streams.delete(stream)) return;
      stream.close();
      if (stream.proxy) {
        const seconds = Math.round((Date.now() - stream.connectedAt.getTime()) / 1000);
        this.log.info({ proxy: stream.proxy.id, kind: stream.proxy.kind, protocol: stream.protocol, connectedSeconds: seconds }, 'proxy disconnected');
      }
    };
    const serve = (req: Req) => {
      if (!this.streams.has(stream)) return; // ended: what is still in flight is not served
      // The first request names the proxy: it must be the workload its certificate proves.
      const denied = stream.proxy ? undefined : this.identityDenial(stream, (req as { node?: RequestNode }).node);
      if (denied) {
        this.refusals.warn('identity', { node: (req as { node?: RequestNode }).node?.id, peer: this.peers.get(stream) ?? null, reason: denied }, 'xDS stream refused: node does not match its certificate');
        call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: denied });
        done();
        return;
      }
      this.safely(stream, () => stream.onRequest(req), (err) => {
        call.emit('error', { code: err instanceof LimitError ? err.code : grpc.status.INVALID_ARGUMENT, details: err.message });
        done();
      });
    };
    call.on('data', (req: Req) => {
      if (!this.streams.has(stream)) return;
      clearTimeout(silent);
      // In arrival order, at most a budget's worth per turn of the event loop (work-budget.ts).
      this.work.run(() => serve(req));
    });
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('close', done);
    call.on('cancelled', done);
  }

  /**
   * Why a stream's node may not be served, or undefined: a node that claims another namespace (or
   * service account, metadata SERVICE_ACCOUNT) than the SPIFFE ID its client certificate proved
   * would otherwise read another workload's config.
   */
  private identityDenial(stream: XdsStream, node: RequestNode | undefined): string | undefined {
    return this.denial(this.peers.get(stream), node);
  }

  /**
   * The same rule for another service on this server's ports (load reports): why the node on this
   * call may not be heard, or undefined.
   */
  nodeDenial(call: grpc.ServerDuplexStream<unknown, unknown>, node: RequestNode | undefined): string | undefined {
    const peer = this.trustDomain ? peerIdentity(call, this.trustDomain) : undefined;
    return this.denial(peer ? formatSpiffeId(peer) : undefined, node);
  }

  private denial(peer: string | undefined, node: RequestNode | undefined): string | undefined {
    if (!peer) return this.requireIdentity ? 'this xDS server requires a client certificate with a workload identity' : undefined;
    const id = parseSpiffeId(peer);
    if (!id || !node?.id) return undefined; // malformed requests are refused by the stream itself
    const proxy = proxyFromRequest(node);
    if (proxy.namespace !== id.namespace) return `node ${node.id} claims namespace ${proxy.namespace}, but its certificate is ${peer}`;
    const sa = structToJson(node.metadata).SERVICE_ACCOUNT;
    if (typeof sa === 'string' && sa !== id.serviceAccount) return `node ${node.id} claims service account ${sa}, but its certificate is ${peer}`;
    return undefined;
  }

  private safely(stream: XdsStream, fn: () => void, onError?: (e: Error) => void): void {
    try {
      fn();
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      // A client over a limit is the client's problem, not the server's.
      this.log[err instanceof LimitError ? 'warn' : 'error']({ proxy: stream.proxy?.id, err: err.message }, 'ADS stream error');
      onError?.(err);
    }
  }
}
