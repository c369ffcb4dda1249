// DestinationRule `tls.credentialName`: meshpilot applies it where Istio does for a rule without
// workloadSelector (which meshpilot's DestinationRule has not): at gateways only. Sidecars still
// open TLS, without the Secret's client certificate, verifying the server against the system's
// roots; proxyless gRPC gets no TLS for SIMPLE/MUTUAL at all (grpc-warnings.ts says so).
import type { ConfigObject } from '../config/types.ts';
import type { PolicyIn, TrafficPolicyIn } from './input.ts';
import type { FieldPath, IssueSink } from './issues.ts';

function warnPolicy(obj: ConfigObject, p: PolicyIn | undefined, path: FieldPath, issues: IssueSink): void {
  const tls = p?.tls;
  if (!tls?.credentialName || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL')) return;
  const mutual = tls.mode === 'MUTUAL' ? 'without a client certificate (a server requiring one refuses them), ' : '';
  issues.warn(obj, [...path, 'tls', 'credentialName'], `applied by gateways (node type router) only, as in Istio for a DestinationRule without workloadSelector: sidecars connect ${mutual}verifying the server against the system's CA bundle`);
}

export function warnCredentialName(obj: ConfigObject<'DestinationRule'>, issues: IssueSink): void {
  const each = (tp: TrafficPolicyIn | undefined, path: FieldPath) => {
    warnPolicy(obj, tp, path, issues);
    tp?.portLevelSettings?.forEach((s, i) => warnPolicy(obj, s, [...path, 'portLevelSettings', i], issues));
  };
  each(obj.spec.trafficPolicy, ['spec', 'trafficPolicy']);
  obj.spec.subsets?.forEach((s, i) => each(s.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy']));
}
