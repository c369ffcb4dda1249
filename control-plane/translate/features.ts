// The policy features, in order. Each is one object (feature.ts) in its own file; adding one is
// its file and one entry here. The order is the order of their HTTP filters in every connection
// manager (the router, always last, is added by hcm.ts) and the order their route and virtual host
// fields are merged in.
import { cors } from './cors.ts';
import { extAuthz } from './ext-authz.ts';
import type { Feature } from './feature.ts';
import { fault } from './fault.ts';
import { jwtAuthn } from './jwt-authn.ts';
import { localRateLimit } from './local-rate-limit.ts';
import { mirror } from './mirror.ts';
import type { ClientKind } from './proxy.ts';
import { rbacAllow, rbacDeny } from './rbac.ts';
import { rbacAudit, rbacCustom } from './rbac-audit-custom.ts';
import { websocket } from './websocket.ts';

// Order matters: JWT verification first (RBAC reads its payload), then authorization (rbac), so a denied call is neither counted nor faulted;
// then rate limit; then CORS, which answers preflights itself (as in Istio, before fault); then
// fault injection, which acts on the calls that would go upstream.
// Authorization runs in Istio's order: AUDIT (logs only), CUSTOM (shadow rules, then ext_authz), DENY, ALLOW.
export const FEATURES: readonly Feature[] = [
  jwtAuthn,
  rbacAudit,
  rbacCustom,
  extAuthz,
  rbacDeny,
  rbacAllow,
  localRateLimit,
  cors,
  fault,
  mirror,
  websocket,
];

const GRPC_FEATURES = FEATURES.filter((f) => f.grpc);

/** The features a client (or server) of this kind gets. */
export function featuresFor(kind: ClientKind): readonly Feature[] {
  return kind === 'grpc' ? GRPC_FEATURES : FEATURES;
}
