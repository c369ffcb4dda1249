// The validated, fully resolved mesh model: the one data structure between the input stage
// (files, later Kubernetes) and the translator. Everything the translator needs is decided here
// (cluster names, weights, defaults), so translation only maps fields. Frozen after build.

import type { RequestAuthn } from './request-authentication.ts';
import type { RateLimitPolicy } from './rate-limit.ts';
import type { AuthorizationPolicy } from './authorization.ts';
import type { MeshSettings } from './mesh-identity.ts';
import type { PeerAuthPolicy } from './peer-authentication.ts';
import type { SidecarScope } from './sidecars.ts';
import type { CanaryRule, ExperimentRule } from '../rollout/types.ts';

export type Protocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP' | 'HTTPS' | 'TLS';

export interface Locality { region: string; zone: string; subzone: string }

export interface Origin {
  /** `Kind/namespace/name` of the rule this came from. */
  key: string;
  /** `file:line` of the object (or of the http route inside it). */
  at: string;
}

export interface ServicePort { name: string; number: number; protocol: Protocol; targetPort?: number }

export interface Endpoint {
  address: string;
  labels: Record<string, string>;
  locality: Locality;
  /** The endpoint's network; absent means reachable from every network. */
  network?: string;
  weight?: number;
  /** Port number on the endpoint, by service port name. */
  ports: Record<string, number>;
  serviceAccount?: string;
}

/** Services by host, as checks look them up (a Map, or a view of one that records lookups). */
export type ServiceLookup = Pick<ReadonlyMap<string, Service>, 'get' | 'has'>;

/**
 * How a service's addresses are found: STATIC (EDS), DNS (Envoy STRICT_DNS: every address of every
 * endpoint name), DNS_ROUND_ROBIN (LOGICAL_DNS: one name, one address per connection), NONE (the
 * address the caller connected to: ORIGINAL_DST; also used for DYNAMIC_DNS, with a warning).
 */
export type Resolution = 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';

export interface Service {
  host: string;
  namespace: string;
  ports: ServicePort[];
  resolution: Resolution;
  /** ServiceEntry `addresses`: virtual IPs (or CIDR blocks) of the service. */
  addresses?: string[];
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  endpoints: Endpoint[];
  /** ServiceEntry subjectAltNames: identities its workloads present, besides their service accounts'. */
  subjectAltNames?: string[];
  /** ServiceEntry exportTo, resolved (model/export-to.ts); absent: every namespace sees it. */
  exportTo?: readonly string[];
  origin: Origin;
}

export type LbPolicy =
  | { kind: 'simple'; simple: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' }
  /** PASSTHROUGH: to the address the caller connected to (the cluster becomes ORIGINAL_DST). */
  | { kind: 'passthrough' }
  | {
      kind: 'hash';
      algorithm: 'RING_HASH' | 'MAGLEV';
      minimumRingSize?: number;
      maglevTableSize?: number;
      key:
        | { header: string }
        | { cookie: { name: string; ttlSeconds?: number; path?: string; attributes?: Array<{ name: string; value?: string }> } }
        | { sourceIp: true }
        | { queryParameter: string };
    };

export interface ConnectionPool {
  maxConnections?: number;
  connectTimeoutMs?: number;
  maxPendingRequests?: number;
  maxRequests?: number;
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  idleTimeoutMs?: number;
  maxConcurrentStreams?: number;
  /** HTTP/2 PINGs: every intervalMs (Envoy's default when absent), the connection closed after timeoutMs without an answer. */
  http2KeepAlive?: { intervalMs?: number; timeoutMs: number };
  /** h2UpgradePolicy UPGRADE: HTTP/1.1 ports are spoken to as HTTP/2 upstream. */
  h2Upgrade?: boolean;
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  consecutiveLocalOriginFailures?: number;
  splitExternalLocalOriginErrors?: boolean;
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

/** A network's ingress for callers in other networks (Istio's east-west gateway). */
export interface NetworkGateway { address: string; port: number }

/** DestinationRule localityLbSetting, resolved (translate/locality-priority.ts applies it per caller). */
export interface LocalityLbPolicy {
  /** false: every caller gets every endpoint at priority 0. */
  enabled: boolean;
  /** Caller region -> the region that comes next after the caller's own. */
  failover: Array<{ from: string; to: string }>;
  /** Label keys, most important first. */
  failoverPriority: string[];
  /** Caller locality pattern -> weights by locality pattern (first matching `from` wins). */
  distribute: Array<{ from: string; to: Array<{ locality: string; weight: number }> }>;
}

/** Traffic policy after merging DestinationRule top level, port level, subset and subset port level. */
export interface ClusterPolicy {
  loadBalancer?: LbPolicy;
  connectionPool?: ConnectionPool;
  outlierDetection?: OutlierDetection;
  locality?: LocalityLbPolicy;
  /** loadBalancer warmup: a new endpoint's share grows over windowMs (Envoy slow start). */
  slowStart?: { windowMs: number; minimumPercent?: number; aggression?: number };
  /** DestinationRule tls, as the layers resolve it (the cluster's final TLS is UpstreamCluster.tls). */
  tls?: ClientTls;
}

/** DestinationRule `tls`, resolved. */
export interface ClientTls {
  mode: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  sni?: string;
  subjectAltNames?: string[];
  insecureSkipVerify?: boolean;
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  /** A Secret in the gateway's namespace (SDS `kubernetes://<name>`); gateways only (credentials/access.ts). */
  credentialName?: string;
}

/** How the caller's proxy opens connections to a cluster's endpoints (absent: plaintext). */
export interface UpstreamTls {
  mode: 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  /** 'rule': the DestinationRule says so; 'auto': auto mTLS (in-mesh destination not DISABLE; Envoy only). */
  source: 'rule' | 'auto';
  sni?: string;
  /** Exact SANs the server certificate must have; for ISTIO_MUTUAL the destination's SPIFFE IDs
   * unless the rule names them. Empty: any certificate the trust anchors accept. */
  subjectAltNames: string[];
  insecureSkipVerify?: boolean;
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  /** Gateways read the certificates from this Secret over SDS; sidecars ignore it (as Istio without workloadSelector). */
  credentialName?: string;
}

/** One upstream cluster: a service port, optionally narrowed to a subset. */
export interface UpstreamCluster {
  /** Istio-style name: `outbound|9080|v1|reviews.default.svc.cluster.local`. */
  name: string;
  host: string;
  port: ServicePort;
  subset?: string;
  resolution: Resolution;
  policy: ClusterPolicy;
  /** Endpoints selected by the subset labels, with the port already resolved. */
  endpoints: Array<Endpoint & { port: number }>;
  /** Gateways of the networks this cluster's endpoints are in (only those), so a gateway change
   * changes exactly the clusters behind it. */
  networkGateways?: Record<string, NetworkGateway[]>;
  /** TLS to the endpoints (model/upstream-tls.ts); absent: plaintext. */
  tls?: UpstreamTls;
  /** Proxies report this cluster's load to meshpilot (LRS): a Canary or a fault experiment's guard reads it. */
  loadReport?: true;
  origin?: Origin;
}

export type StringMatch =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'regex'; value: string };

export interface HeaderCondition {
  name: string;
  /** Absent means "the header is present". */
  match?: StringMatch;
  /** True for withoutHeaders: the condition holds when the header does NOT match. */
  invert: boolean;
}

export interface RouteMatch {
  uri?: StringMatch;
  ignoreUriCase: boolean;
  method?: StringMatch;
  headers: HeaderCondition[];
  queryParams: Array<{ name: string; match?: StringMatch }>;
  /** Source conditions are resolved per proxy group by the translator, never sent to proxies. */
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
}

export interface WeightedDestination {
  cluster: string;
  host: string;
  port: number;
  subset?: string;
  weight: number;
  /** route[].headers: changes for the calls sent to this destination (sidecars only). */
  requestHeaders?: HeaderOps;
  responseHeaders?: HeaderOps;
  /** route[].headers.request.set[":authority"]: the authority these calls are sent with. */
  authority?: string;
}

export interface HeaderOps {
  set: Array<[string, string]>;
  add: Array<[string, string]>;
  remove: string[];
}

export interface RetryPolicy { attempts: number; perTryTimeoutMs?: number; retryOn?: string[] }

export type RouteAction =
  | {
      kind: 'route';
      destinations: WeightedDestination[];
      timeoutMs?: number;
      retries?: RetryPolicy;
      rewrite?: { uri?: string; authority?: string; uriRegex?: { match: string; rewrite: string } };
    }
  | {
      kind: 'redirect';
      uri?: string;
      authority?: string;
      port?: number;
      scheme?: string;
      code: 301 | 302 | 303 | 307 | 308;
    }
  | {
      /** http[].directResponse: the proxy answers itself; nothing is forwarded. Sidecars only. */
      kind: 'direct';
      status: number;
      body?: { string: string } | { bytes: string };
    };

export interface HttpRoute {
  /** Unique within the route table: `<vs-namespace>/<vs-name>/<http name or index>`. */
  name: string;
  /** Any match suffices; an empty list matches every request. */
  matches: RouteMatch[];
  action: RouteAction;
  requestHeaders?: HeaderOps;
  responseHeaders?: HeaderOps;
  /** Fault injection (http[].fault), for the requests this route matches. */
  fault?: FaultPolicy;
  /** Set by the runtime overlay (model/runtime-overlay.ts): the Canary that decides the weights now. */
  weightsFrom?: Origin;
  /** Set by the runtime overlay: the FaultExperiment whose fault this is. */
  faultFrom?: Origin;
  /** Request mirroring (mirror + mirrorPercentage, or mirrors[]); sidecars only. */
  mirrors?: MirrorTarget[];
  /** http[].websocketUpgrade: true; sidecars only (forwarding routes). */
  websocketUpgrade?: true;
  /** CORS (http[].corsPolicy); sidecars only. */
  cors?: CorsPolicy;
  /** The VirtualService's exportTo, resolved (model/export-to.ts); absent: every namespace. */
  exportTo?: readonly string[];
  origin: Origin;
  /** Set when a root's http[rootIndex].delegate brought this route from http[index] of a delegate
   * VirtualService (origin stays the root's: exportTo and Sidecar scope are the root's). */
  delegation?: { rootIndex: number; key: string; at: string; index: number };
}

/** http[].corsPolicy, resolved: lists in rule order, maxAge in whole seconds. */
export interface CorsPolicy {
  /** Allowed origins (allowOrigins, or the deprecated allowOrigin as exact matches). */
  origins: StringMatch[];
  methods: string[];
  headers: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
  allowCredentials?: boolean;
  /** unmatchedPreflights: FORWARD (Istio's default) passes preflights from other origins on. */
  forwardUnmatchedPreflights: boolean;
}

/** Percentages are Istio's: 0 to 100, decimals allowed. */
export interface FaultPolicy {
  delay?: { fixedDelayMs: number; percent: number };
  abort?: { percent: number } & ({ httpStatus: number } | { grpcStatus: number });
}

/** One mirror target, resolved like a route destination; responses are discarded. */
export interface MirrorTarget {
  cluster: string;
  host: string;
  port: number;
  subset?: string;
  percent: number;
}

/** The ordered routes for one service port, merged from every VirtualService naming the host. */
export interface RouteTable {
  host: string;
  port: number;
  routes: HttpRoute[];
  /** For a table made of VirtualService routes: the service's default route, for callers that
   * see none of them (exportTo, Sidecar egress namespaces; translate/scope.ts). */
  fallback?: HttpRoute;
}

/** One tcp/tls match, resolved; every field present must hold (an absent field holds always). */
export interface L4Match {
  /** Destination IPs/CIDRs; empty: the service's own addresses (or any, when it has none). */
  destinationSubnets: string[];
  /** tls routes only: the SNI values (`*.example.com` allowed). */
  sniHosts?: string[];
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  /** The match's `gateways`, else the VirtualService's; absent: mesh only. Sidecars take it only with `mesh`. */
  gateways?: string[];
}

/** One tcp or tls route for a service port (model/l4-routes.ts). */
export interface L4Route {
  /** `<vs-namespace>/<vs-name>/tcp/<index>` or `.../tls/<index>`; `default` for the service's own. */
  name: string;
  kind: 'tcp' | 'tls';
  /** Any match suffices; an empty list matches every connection. */
  matches: L4Match[];
  /** Weight > 0 only; relative shares. */
  destinations: WeightedDestination[];
  origin: Origin;
}

/** The ordered L4 routes of one non-HTTP service port (TCP, TLS, HTTPS), the service's default last. */
export interface L4Table {
  host: string;
  port: number;
  protocol: Protocol;
  /** The service's virtual IPs (ServiceEntry `addresses`), which its connections are told apart by. */
  addresses: string[];
  routes: L4Route[];
  /** Other services on this port without a VIP (or HTTP there): connections to this one cannot be
   * told apart by address, so only its routes' destinationSubnets/SNI chains are sent. */
  sharedWith?: string[];
}

export interface Model {
  services: Service[]; // sorted by host
  clusters: UpstreamCluster[]; // sorted by name
  routeTables: RouteTable[]; // sorted by host, port
  /** tcp/tls routes per non-HTTP service port (model/l4-routes.ts); sorted by host, port. */
  l4Tables: L4Table[];
  /** RateLimit rules with each replica's token share (model/rate-limit.ts); sorted by host, port. */
  rateLimits: RateLimitPolicy[];
  /** AuthorizationPolicies, resolved (model/authorization.ts); sorted by namespace/name. */
  authorizationPolicies: AuthorizationPolicy[];
  /** PeerAuthentications in force (model/peer-authentication.ts); sorted by namespace/name. */
  peerAuthentications: PeerAuthPolicy[];
  /** RequestAuthentications (JWT providers) in force (model/request-authentication.ts); sorted by namespace/name. */
  requestAuthentications: RequestAuthn[];
  /** Trust domain and root namespace (model/mesh-identity.ts). */
  mesh: MeshSettings;
  /** Sidecars in force (model/sidecars.ts); sorted by namespace/name. */
  sidecars: SidecarScope[];
  /** Network -> its gateways, from the config source (LoadResult.networkGateways). */
  networkGateways: Record<string, NetworkGateway[]>;
  /** Problems that do not stop a rule from being used (e.g. a feature proxyless gRPC ignores). */
  warnings: ModelIssue[];
  /** Gateways (model/gateways.ts), sorted by namespace/name. */
  gateways: Gateway[];
  /** VirtualServices bound to gateways, with their routes (model/gateways.ts); sorted by key. */
  gatewayVirtualServices: GatewayVirtualService[];
  /** Canaries in force (model/canaries.ts), sorted by key; their weights come from the runtime overlay. */
  canaries: CanaryRule[];
  /** Fault experiments in force (model/experiments.ts), sorted by key; injected only while the runtime says so. */
  experiments: ExperimentRule[];
}

/** A Gateway server's TLS settings (Istio's ServerTLSSettings), as written. */
export interface GatewayServerTls {
  httpsRedirect: boolean;
  mode: 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
  credentialName?: string;
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  subjectAltNames: string[];
  minProtocolVersion?: string;
  maxProtocolVersion?: string;
  cipherSuites: string[];
}

export interface GatewayServer {
  port: number;
  portName: string;
  /** Upper case: HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL. */
  protocol: string;
  /** `namespace` is `*` (any) or the namespace a VirtualService must be in; `.` is resolved. */
  hosts: Array<{ namespace: string; host: string }>;
  bind?: string;
  name?: string;
  tls?: GatewayServerTls;
  /** `file:line` of the server. */
  at: string;
}

export interface Gateway {
  /** `namespace/name`, as VirtualServices name it. */
  key: string;
  namespace: string;
  name: string;
  /** Gateway pods (router nodes) whose labels include these, in any namespace; empty: every one. */
  selector: Record<string, string>;
  servers: GatewayServer[];
  origin: Origin;
}

/** Where one match of a gateway route applies: its own gateways (else the VirtualService's) and port. */
export interface GatewayMatchScope { gateways?: string[]; port?: number }

export interface GatewayVirtualService {
  /** `namespace/name` of the VirtualService. */
  key: string;
  namespace: string;
  /** Hosts as fully qualified names (short names resolved in the rule's namespace), or `*`. */
  hosts: string[];
  /** Gateway keys (`namespace/name`) it is bound to, `mesh` left out. */
  gateways: string[];
  /** Routes in order; `scopes[i]` belongs to `route.matches[i]`; `http`: its index in spec.http. */
  routes: Array<{ route: HttpRoute; scopes: GatewayMatchScope[]; http: number }>;
  /** tcp and tls routes (tls first, then tcp, each in file order), for non-HTTP gateway servers. */
  l4: GatewayL4Route[];
  origin: Origin;
}

/** A VirtualService tcp/tls route at gateways: `scopes[i]` is match i (none: every connection). */
export interface GatewayL4Route {
  kind: 'tcp' | 'tls';
  /** Its index in spec.tcp / spec.tls. */
  index: number;
  scopes: Array<GatewayMatchScope & { sniHosts?: string[] }>;
  /** Weight > 0 only; relative shares. */
  destinations: WeightedDestination[];
  origin: Origin;
}

export interface ModelIssue {
  key: string; // Kind/namespace/name
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}
