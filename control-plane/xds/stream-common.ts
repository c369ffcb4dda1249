// What state-of-the-world and delta streams share: who the proxy is, the per-type state they both
// keep (nonces, versions, ACK/NACK), how it is reported, and the start of every request.
import type { Logger } from '../log.ts';
import { proxyFromNode, type NodeInfo, type Proxy } from '../translate/proxy.ts';
import { SECRET, TYPE_ORDER, type ResourceType } from '../translate/type-urls.ts';

/** What a stream serves: the translated types, and SDS secrets (credentials/). */
export type XdsType = ResourceType | typeof SECRET;
export const STREAM_TYPES: readonly XdsType[] = [...TYPE_ORDER, SECRET];
import { DEFAULT_XDS_LIMITS, type XdsLimits } from './limits.ts';
import { LogLimiter } from './log-limiter.ts';
import type { SnapshotCache } from './snapshot-cache.ts';
import { structToJson } from './struct.ts';

export interface RequestNode { id?: string; metadata?: unknown; locality?: NodeInfo['locality']; user_agent_name?: string }

/** What one proxy has of one type, for status pages and tests. */
export interface TypeStatus {
  subscribed: string[] | '*';
  sentVersion?: string;
  sentNonce?: string;
  ackedVersion?: string;
  nack?: { nonce: string; version: string; message: string };
  /** The model generation this type was last brought up to date with (SnapshotCache.generation). */
  generation?: number;
}

/**
 * What streams report as it happens, for metrics (control-plane/metrics.ts). Optional, and cheap
 * by contract: it is called on the push and ACK paths.
 */
export interface XdsObserver {
  /** A response of `type` was written; `onChange` when a config change caused it (not a new subscription). */
  sent(stream: object, type: string, onChange: boolean): void;
  acked(stream: object, type: string): void;
  /** Once per rejected nonce. */
  nacked(stream: object, type: string): void;
}

/** What a stream keeps per type, whichever protocol it speaks. */
export interface TypeStateCommon {
  wildcard: boolean;
  /** Whether the client has asked for this type at all: nothing is sent before it does. */
  requested: boolean;
  sentVersion?: string;
  sentNonce?: string;
  ackedVersion?: string;
  nack?: { nonce: string; version: string; message: string };
  /** The model generation this type was last brought up to date with (SnapshotCache.generation). */
  generation?: number;
}

/** The proxy named by the first request of a stream (which must carry the node). */
export function proxyFromRequest(node: RequestNode | undefined): Proxy {
  if (!node?.id) throw new Error('the first request on a stream must carry node.id');
  return proxyFromNode({
    id: node.id,
    metadata: structToJson(node.metadata),
    ...(node.locality ? { locality: node.locality } : {}),
    ...(node.user_agent_name ? { user_agent_name: node.user_agent_name } : {}),
  });
}

export function typeStatus<S extends TypeStateCommon>(types: ReadonlyMap<string, S>, names: (s: S) => ReadonlySet<string>): Record<string, TypeStatus> {
  const out: Record<string, TypeStatus> = {};
  for (const [type, s] of types) {
    out[type] = {
      subscribed: s.wildcard ? '*' : [...names(s)].sort(),
      ...(s.sentVersion ? { sentVersion: s.sentVersion, sentNonce: s.sentNonce } : {}),
      ...(s.ackedVersion ? { ackedVersion: s.ackedVersion } : {}),
      ...(s.nack ? { nack: s.nack } : {}),
      ...(s.generation !== undefined ? { generation: s.generation } : {}),
    };
  }
  return out;
}

/** What a stream may be given besides its cache, sender and logger. */
export interface StreamOptions {
  observer?: XdsObserver;
  limits?: XdsLimits;
}

/**
 * The part of an ADS stream both protocols share: the proxy, the per-type state map, the nonce
 * counter and log limiter, the start of a request (who is asking, for which type) and ACK/NACK
 * bookkeeping. Each protocol keeps its own `State` (what it needs besides `TypeStateCommon`).
 */
export abstract class StreamBase<State extends TypeStateCommon, Response> {
  abstract readonly protocol: 'sotw' | 'delta';
  proxy?: Proxy;
  readonly connectedAt = new Date();
  protected readonly types = new Map<string, State>();
  protected nonceCounter = 0;
  protected readonly logs: LogLimiter;
  protected readonly observer: XdsObserver | undefined;
  protected readonly limits: XdsLimits;

  constructor(
    protected readonly cache: SnapshotCache,
    protected readonly send: (r: Response) => void,
    protected readonly log: Logger,
    options: StreamOptions = {},
  ) {
    this.observer = options.observer;
    this.limits = options.limits ?? DEFAULT_XDS_LIMITS;
    this.logs = new LogLimiter(log, this.limits.logEventsPerStream, this.limits.logSummaryMs);
  }

  /** The names a type's state is subscribed to (a wildcard aside). */
  protected abstract subscribedNames(state: State): ReadonlySet<string>;

  status(): Record<string, TypeStatus> {
    return typeStatus(this.types, (s) => this.subscribedNames(s));
  }

  /** The stream ended: what its log limiter left out is told. */
  close(): void {
    this.logs.flush({ proxy: this.proxy?.id });
  }

  /**
   * The start of every request: the first one names the proxy; returns the request's type, or
   * undefined (logged, within limits) for a type meshpilot does not serve.
   */
  protected begin(req: { node?: RequestNode; type_url?: string }): XdsType | undefined {
    if (!this.proxy) {
      this.proxy = proxyFromRequest(req.node);
      this.log.info({ proxy: this.proxy.id, kind: this.proxy.kind, namespace: this.proxy.namespace, protocol: this.protocol }, 'proxy connected');
    }
    const type = req.type_url ?? '';
    if (!(STREAM_TYPES as readonly string[]).includes(type)) {
      this.logs.warn('unknown-type', { proxy: this.proxy.id, type }, 'request for a resource type meshpilot does not serve');
      return undefined;
    }
    return type as XdsType;
  }

  /** The client accepted the last response of `type` (and holds `version`). */
  protected acked(state: State, type: string, version: string | undefined): void {
    state.ackedVersion = version;
    state.nack = undefined;
    this.observer?.acked(this, type);
  }

  /**
   * The client rejected the response with `nonce`. Clients repeat a NACK on later requests: each
   * rejected nonce is recorded, logged and counted once. `details` adds to the log line.
   */
  protected nacked(state: State, type: string, nonce: string, message: string, details?: () => Record<string, unknown>): void {
    if (state.nack?.nonce === nonce) return;
    state.nack = { nonce, version: state.sentVersion ?? '', message };
    this.logs.warn('nack', { proxy: this.proxy?.id, type, version: state.sentVersion, nonce, ...details?.(), message }, 'proxy rejected config (NACK)');
    this.observer?.nacked(this, type);
  }
}
