// Explain for a gateway proxy (node type `router`): which listener takes the request (its server
// port, or the target port the pod listens on), which filter chain by SNI, what TLS that chain
// terminates with, and which rule a gateway route came from.
import type { Model } from '../model/types.ts';
import type { Json } from '../json.ts';
import type { RuleRef } from './origins.ts';

const rdsOf = (chain: Json): string | undefined => {
  const hcm = ((chain.filters as Json[] | undefined) ?? [])[0]?.typed_config as Json | undefined;
  return (hcm?.rds as Json | undefined)?.route_config_name as string | undefined;
};

/** The listener for a request to `port`: bound there, or serving route configs of that server port. */
export function gatewayListener(listeners: readonly Json[], port: number): Json | undefined {
  return (
    listeners.find((l) => ((l.address as Json)?.socket_address as Json)?.port_value === port) ??
    listeners.find((l) => ((l.filter_chains as Json[] | undefined) ?? []).some((c) => {
      const rds = rdsOf(c) ?? '';
      return rds === `http.${port}` || rds.startsWith(`https.${port}.`);
    }))
  );
}

function sniMatches(pattern: string, host: string): boolean {
  return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : pattern === host;
}

/** The filter chain Envoy picks for the TLS server name `host` (a chain without names takes any). */
export function chainFor(listener: Json, host: string): Json | undefined {
  const chains = (listener.filter_chains as Json[] | undefined) ?? [];
  const names = (c: Json) => (((c.filter_chain_match as Json | undefined)?.server_names as string[] | undefined) ?? []);
  return chains.find((c) => names(c).some((n) => n === host)) ?? chains.find((c) => names(c).some((n) => sniMatches(n, host))) ?? chains.find((c) => names(c).length === 0);
}

/** In words: what TLS a chain terminates (certificate source, client certificates). */
export function chainTlsNote(chain: Json): string | undefined {
  const tls = (chain.transport_socket as Json | undefined)?.typed_config as Json | undefined;
  if (!tls) return undefined;
  const common = (tls.common_tls_context ?? {}) as Json;
  const sds = ((common.tls_certificate_sds_secret_configs as Json[] | undefined) ?? []).map((s) => String(s.name));
  const files = ((common.tls_certificates as Json[] | undefined) ?? []).map((c) => String(((c.certificate_chain as Json) ?? {}).filename));
  const cert = sds.length ? `certificate from SDS secret ${sds.join(', ')}` : `certificate from file ${files.join(', ')}`;
  const client = tls.require_client_certificate ? '; the client must present a certificate' : '';
  return `filter chain ${String(chain.name)} terminates TLS (${cert}${client})`;
}

/** The rule a gateway route came from, by its name (`ns/vs/route`). */
export function gatewayRouteRule(model: Model, routeName: string): RuleRef | undefined {
  for (const vs of model.gatewayVirtualServices) {
    const r = vs.routes.find((x) => x.route.name === routeName);
    if (r) return { key: r.route.origin.key, at: r.route.origin.at, path: `spec.http[${r.http}]` };
  }
  return undefined;
}
