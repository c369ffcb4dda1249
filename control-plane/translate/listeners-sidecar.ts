// Envoy sidecar listeners, in Istio's layout: iptables sends outbound traffic to virtualOutbound
// (15001) and inbound traffic to virtualInbound (15006); both hand connections to the listener or
// filter chain for the original destination port.
import { isHttpProtocol } from '../model/services.ts';
import type { Model } from '../model/types.ts';
import { httpConnectionManager, httpFilters } from './hcm.ts';
import type { Proxy } from './proxy.ts';
import type { InboundPort } from './inbound.ts';
import { inboundMode, passthroughChain, sidecarInboundChains, TLS_INSPECTOR_FILTER } from './inbound-mtls.ts';
import { effectiveMtls } from '../model/peer-authentication.ts';
import type { Json } from '../json.ts';
import { LISTENER, ORIGINAL_DST, TCP_PROXY } from './type-urls.ts';
import { l4FilterChains, l4Ports, passthroughFilterChain } from './listeners-tcp.ts';

export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_PORT = 15006;

function socket(address: string, port: number): Json {
  return { socket_address: { address, port_value: port } };
}

function tcpProxy(statPrefix: string, cluster: string): Json {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: statPrefix, cluster } };
}

const ORIGINAL_DST_FILTER = { name: 'envoy.filters.listener.original_dst', typed_config: { '@type': ORIGINAL_DST } };

export function virtualOutbound(): Json {
  return {
    '@type': LISTENER,
    name: 'virtualOutbound',
    address: socket('0.0.0.0', VIRTUAL_OUTBOUND_PORT),
    use_original_dst: true,
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxy('PassthroughCluster', 'PassthroughCluster')] }],
  };
}

/**
 * One listener per outbound port, not bound: virtualOutbound hands connections to it (only the
 * ports in `only` when given). An HTTP port's connection manager takes what no tcp/tls chain
 * (a TCP service's VIP, an SNI) claims; a port without HTTP passes unclaimed connections through.
 */
export function outboundListeners(model: Model, proxy: Proxy, only?: ReadonlySet<number>): Json[] {
  const httpPorts = new Set<number>();
  for (const s of model.services) for (const p of s.ports) if (isHttpProtocol(p.protocol)) httpPorts.add(p.number);
  const ports = [...new Set([...httpPorts, ...l4Ports(model)])].filter((p) => !only || only.has(p));
  return ports.sort((a, b) => a - b).map((port) => {
    const http = httpPorts.has(port);
    const taken = new Set<string>(http ? ['|'] : []);
    const chains: Json[] = http
      ? [{ name: `0.0.0.0_${port}`, filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: httpConnectionManager(`outbound_0.0.0.0_${port}`, { rds: String(port) }, httpFilters({ model, proxy, side: 'outbound', port })) }] }]
      : [];
    chains.push(...l4FilterChains(model, proxy, port, taken));
    if (!taken.has('|')) chains.push(passthroughFilterChain());
    // SNI is read only where a chain matches on it: server-first protocols (MySQL) send nothing first.
    const sni = chains.some((c) => (c.filter_chain_match as Json | undefined)?.server_names);
    return {
      '@type': LISTENER,
      name: `0.0.0.0_${port}`,
      address: socket('0.0.0.0', port),
      bind_to_port: false,
      traffic_direction: 'OUTBOUND',
      ...(sni ? { listener_filters: [TLS_INSPECTOR_FILTER] } : {}),
      filter_chains: chains,
    };
  });
}

const XFCC = { forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { uri: true } };

export function virtualInbound(model: Model, proxy: Proxy, inbound: InboundPort[]): Json {
  const modes = inbound.map((p) => inboundMode(model, proxy, p.port));
  const chains = inbound.flatMap((p, i) => {
    const http = isHttpProtocol(p.protocol);
    const filter = http
      ? {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            ...httpConnectionManager(`inbound_0.0.0.0_${p.port}`, {
              inline: {
                name: p.cluster,
                virtual_hosts: [{ name: p.cluster, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: p.cluster, timeout: '0s' } }] }],
                validate_clusters: false,
              },
            }, httpFilters({ model, proxy, side: 'inbound', port: p.port })),
            // The app is told who called it: x-forwarded-client-cert carries the URI SAN (SPIFFE ID)
            // of the client certificate this Envoy verified. SANITIZE_SET drops any such header a
            // caller sent itself, so on a plaintext chain the app gets none rather than a forged one.
            ...XFCC,
          },
        }
      : tcpProxy(p.cluster, p.cluster);
    return sidecarInboundChains(modes[i]!, { name: p.cluster, port: p.port, filters: [filter], alpn: http ? ['h2', 'http/1.1'] : [] });
  });
  // Port 0 is in no portLevelMtls: the workload's own mode.
  const passthroughMode = effectiveMtls(model.peerAuthentications, model.mesh, proxy.namespace, proxy.labels, 0).mode;
  const passthrough = passthroughChain(passthroughMode, { name: 'virtualInbound-catchall-tcp', filters: [tcpProxy('InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv4')] });
  // The tls_inspector only where a port takes both TLS and plaintext.
  const inspect = modes.includes('PERMISSIVE') ? [TLS_INSPECTOR_FILTER] : [];
  return {
    '@type': LISTENER,
    name: 'virtualInbound',
    address: socket('0.0.0.0', VIRTUAL_INBOUND_PORT),
    listener_filters: [ORIGINAL_DST_FILTER, ...inspect],
    traffic_direction: 'INBOUND',
    filter_chains: [...chains, passthrough],
  };
}
