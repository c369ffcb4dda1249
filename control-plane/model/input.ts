// The spec shapes the model builder reads, in Istio's field names, under the names the model
// uses. They are the output types of the zod schemas in control-plane/config/schemas (which are
// the authority on what is accepted), not copies: a renamed or retyped schema field breaks the
// model at compile time instead of reading as `undefined` at run time. A ConfigObject narrowed
// with `isKind(obj, 'X')` / `ofKind(objects, 'X')` (config/types.ts) has `spec` of the X's type.
import type * as S from '../config/schemas/index.ts';

// ---- VirtualService ----
export type VirtualServiceIn = S.VirtualServiceSpec;
export type HttpRouteIn = S.HTTPRoute;
export type MatchIn = S.HTTPMatchRequest;
export type StringMatchIn = S.StringMatch;
export type DestinationIn = S.Destination;
export type HeaderOpsIn = S.HeaderOperations;
export type FaultIn = S.HTTPFaultInjection;
export type CorsIn = S.CorsPolicy;
export type PercentIn = S.Percent;
export type TcpRouteIn = S.TCPRoute;
export type TlsRouteIn = S.TLSRoute;
export type RouteDestinationIn = S.RouteDestination;

// ---- DestinationRule ----
export type DestinationRuleIn = S.DestinationRuleSpec;
export type TrafficPolicyIn = S.TrafficPolicy;
/** One layer of a traffic policy: what a TrafficPolicy and its per-port settings both have. */
export type PolicyIn = Pick<S.TrafficPolicy, 'loadBalancer' | 'connectionPool' | 'outlierDetection' | 'tls'>;
export type ClientTlsIn = S.ClientTLSSettings;
export type LoadBalancerIn = S.LoadBalancerSettings;
export type LocalityLbSettingIn = S.LocalityLbSetting;
export type ConnectionPoolIn = S.ConnectionPoolSettings;
export type OutlierDetectionIn = S.OutlierDetection;

// ---- ServiceEntry, WorkloadEntry ----
export type ServiceEntryIn = S.ServiceEntrySpec;
export type WorkloadEntryIn = S.WorkloadEntrySpec;

// ---- RateLimit ----
export type RateLimitIn = S.RateLimitSpec;

// ---- AuthorizationPolicy ----
export type AuthorizationPolicyIn = S.AuthorizationPolicySpec;
export type AuthorizationSourceIn = S.AuthorizationSource;
export type AuthorizationOperationIn = S.AuthorizationOperation;
export type AuthorizationConditionIn = S.AuthorizationCondition;

// ---- PeerAuthentication ----
export type PeerAuthenticationIn = S.PeerAuthenticationSpec;

// ---- RequestAuthentication ----
export type RequestAuthenticationIn = S.RequestAuthenticationSpec;
export type JwtRuleIn = S.JwtRuleSpec;
