// The spec shapes the model builder reads, in Istio's field names. The zod schemas in
// control-plane/config/schemas are the authority on what is accepted; these interfaces are the
// subset the builder consumes, so the model does not depend on how the schemas are written.

export interface StringMatchIn { exact?: string; prefix?: string; regex?: string }

export interface MatchIn {
  name?: string;
  uri?: StringMatchIn;
  method?: StringMatchIn;
  headers?: Record<string, StringMatchIn>;
  withoutHeaders?: Record<string, StringMatchIn>;
  queryParams?: Record<string, StringMatchIn>;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  ignoreUriCase?: boolean;
}

export interface DestinationIn { host: string; subset?: string; port?: { number: number } }

export interface HeaderOpsIn { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] }

export interface HttpRouteIn {
  name?: string;
  match?: MatchIn[];
  route?: Array<{ destination: DestinationIn; weight?: number }>;
  redirect?: { uri?: string; authority?: string; port?: number; scheme?: string; redirectCode?: number };
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: { match: string; rewrite: string } };
  timeout?: string;
  retries?: { attempts?: number; perTryTimeout?: string; retryOn?: string };
  headers?: { request?: HeaderOpsIn; response?: HeaderOpsIn };
  fault?: FaultIn;
  mirror?: DestinationIn;
  mirrorPercentage?: PercentIn;
  mirrors?: Array<{ destination: DestinationIn; percentage?: PercentIn }>;
}

export interface PercentIn { value: number }

export interface FaultIn {
  delay?: { fixedDelay?: string; percentage?: PercentIn; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; percentage?: PercentIn };
}

export interface VirtualServiceIn { hosts: string[]; http?: HttpRouteIn[] }

export interface LoadBalancerIn {
  simple?: string;
  consistentHash?: {
    httpHeaderName?: string;
    httpCookie?: { name: string; ttl?: string; path?: string };
    useSourceIp?: boolean;
    httpQueryParameterName?: string;
    ringHash?: { minimumRingSize?: number };
    maglev?: { tableSize?: number };
    minimumRingSize?: number;
  };
  localityLbSetting?: LocalityLbSettingIn;
}

export interface LocalityLbSettingIn {
  distribute?: Array<{ from: string; to: Record<string, number> }>;
  failover?: Array<{ from: string; to: string }>;
  failoverPriority?: string[];
  enabled?: boolean;
}

export interface ConnectionPoolIn {
  tcp?: { maxConnections?: number; connectTimeout?: string };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
    maxConcurrentStreams?: number;
  };
}

export interface OutlierDetectionIn {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  consecutiveLocalOriginFailures?: number;
  splitExternalLocalOriginErrors?: boolean;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

export interface PolicyIn {
  loadBalancer?: LoadBalancerIn;
  connectionPool?: ConnectionPoolIn;
  outlierDetection?: OutlierDetectionIn;
}

export interface TrafficPolicyIn extends PolicyIn {
  portLevelSettings?: Array<PolicyIn & { port: { number: number } }>;
}

export interface DestinationRuleIn {
  host: string;
  trafficPolicy?: TrafficPolicyIn;
  subsets?: Array<{ name: string; labels?: Record<string, string>; trafficPolicy?: TrafficPolicyIn }>;
}

export interface WorkloadEntryIn {
  address: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  locality?: string;
  network?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface ServiceEntryIn {
  hosts: string[];
  ports: Array<{ number: number; protocol?: string; name: string; targetPort?: number }>;
  location?: string;
  resolution?: string;
  endpoints?: WorkloadEntryIn[];
  workloadSelector?: { labels?: Record<string, string> };
}
