// What explain answers (the `--json` output and the POST /debug/explain body).
import type { RuleRef } from './origins.ts';

export interface RouteStep {
  /** Position in the virtual host's route list. */
  index: number;
  name: string;
  /** The Envoy match, in words. */
  match: string;
  result: 'matched' | 'no match' | 'partial';
  /** For `no match`: the first condition that failed. For `partial`: the share taking this route. */
  reason?: string;
  rule?: RuleRef;
}

export interface EndpointGroup {
  priority: number;
  locality: string;
  /** Share of the cluster's traffic while every endpoint is healthy (lowest priority takes all). */
  share: number;
  sameLocalityAsCaller: boolean;
  endpoints: Array<{ address: string; port: number; weight?: number }>;
}

export interface AuthzStep {
  filter: string;
  /** AUDIT: logs only (never changes the decision); CUSTOM: the external authorizer decides what the rules match. */
  action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  shadow: boolean;
  /** Policies that match the request (true), or might (unknown: e.g. the caller's IP is not known). */
  matched: Array<{ policy: string; rule?: RuleRef }>;
  unknown: Array<{ policy: string; why: string; rule?: RuleRef }>;
  outcome: 'allow' | 'deny' | 'unknown' | 'no effect';
  reason: string;
}

export interface RateLimitInfo {
  side: 'outbound' | 'inbound';
  /** The callee endpoint, for inbound limits. */
  endpoint?: string;
  tokens: number;
  fillInterval: string;
  enforcedShare: number;
  enabledShare: number;
  statPrefix: string;
  rule?: RuleRef;
}

/** One hop's TLS (explain/tls.ts). */
export interface TlsHop {
  /** What the caller's cluster sends. */
  caller: 'mTLS' | 'TLS' | 'plaintext';
  /** What the callee's inbound side takes on this port. */
  callee: 'mTLS only' | 'mTLS or plaintext' | 'plaintext only';
  /** SANs the caller accepts from the callee (empty: any certificate its trust anchors accept). */
  accepts: string[];
  /** The callee's SPIFFE ID (its endpoint's service account). */
  calleeIdentity?: string;
  result: 'mTLS' | 'plaintext' | 'fails';
  /** The PeerAuthentication that decided the callee's mode (none: the default, PERMISSIVE). */
  calleeRule?: RuleRef;
  /** The identity the callee's RBAC sees. */
  identity?: string;
  reason: string;
}

export interface InboundResult {
  endpoint: string;
  workload: string;
  tls?: TlsHop;
  /** The callee's JWT filter (explain/jwt.ts): the token decoded, not verified. */
  jwt?: { outcome: 'authenticated' | 'no token' | 'deny'; reason: string };
  /** What the callee's inbound side does with the request. */
  decision: 'allow' | 'deny' | 'unknown' | 'not a mesh workload';
  reason: string;
  authz: AuthzStep[];
  rateLimits: RateLimitInfo[];
}

export interface Destination {
  cluster: string;
  host?: string;
  port?: number;
  subset?: string;
  weight: number;
  share: number;
  rules: RuleRef[];
  /** Missing cluster or no endpoints: requests sent here fail. */
  problem?: string;
  endpoints: EndpointGroup[];
  inbound: InboundResult[];
}

export interface FaultInfo {
  kind: 'delay' | 'abort';
  share: number;
  delay?: string;
  httpStatus?: number;
  grpcStatus?: number;
  /** The fault is taken from a request header (header_delay / header_abort). */
  fromHeader?: boolean;
  /** Why the fault filter does not apply to this request, when it does not (its header conditions). */
  notApplied?: string;
  rule?: RuleRef;
}

export interface Explanation {
  caller: { id: string; kind: 'envoy' | 'grpc'; router?: true; namespace: string; labels: Record<string, string>; ip?: string; locality: string; how: string };
  request: { method: string; authority: string; path: string; headers: Record<string, string> };
  listener?: string;
  routeConfig?: string;
  virtualHost?: { name: string; domain: string; how: string };
  routes: RouteStep[];
  /** The route that takes the request. */
  route?: RouteStep;
  outcome: {
    kind: 'forward' | 'redirect' | 'direct response' | 'no listener' | 'no route config' | 'no virtual host' | 'no route' | 'passthrough' | 'blocked';
    /** The status the caller sees when the proxy answers itself (404, 301, ...). */
    status?: number;
    summary: string;
  };
  destinations: Destination[];
  /** The Canary whose rollout sets the destinations' weights now (instead of the VirtualService's). */
  weightsFrom?: RuleRef;
  faults: FaultInfo[];
  mirrors: Array<{ cluster: string; share: number; rule?: RuleRef }>;
  timeout?: { value: string; rule?: RuleRef; note: string };
  retry?: { attempts: number; on: string; perTryTimeout?: string; rule?: RuleRef; note: string };
  rewrite?: string;
  rateLimits: RateLimitInfo[];
  /** Overall decision at the callee(s): deny if every endpoint denies, allow if every one allows. */
  decision: 'allow' | 'deny' | 'mixed' | 'unknown' | 'none';
  notes: string[];
}
