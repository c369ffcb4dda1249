// Proxyless gRPC servers (grpc-js-xds XdsServer, grpc-go xds.NewGRPCServer, ...): a server asks for
// the Listener named by its bootstrap's `server_listener_resource_name_template` with the address
// it bound filled in. We answer Istio's template, `xds.istio.io/grpc/lds/inbound/%s`, with one
// Listener per port of the workload (the service ports whose endpoint is the proxy's IP).
//
// What gRPC requires of a server Listener: `address.socket_address` equal to the bound ip:port,
// no `destination_port` in filter_chain_match (such a chain never matches), and routes with
// `non_forwarding_action` (anything else fails the call). The HTTP filters (RBAC) run per call.
import { isIP } from 'node:net';
import type { Model } from '../model/types.ts';
import { httpConnectionManager, httpFilters } from './hcm.ts';
import { inboundPorts } from './inbound.ts';
import { grpcServerTransportSocket, inboundMode } from './inbound-mtls.ts';
import type { Proxy } from './proxy.ts';
import type { Json } from '../json.ts';
import { LISTENER } from './type-urls.ts';

export const GRPC_SERVER_LISTENER_PREFIX = 'xds.istio.io/grpc/lds/inbound/';

/** `10.0.0.1:8080`, `[fd00::1]:8080`: the form a server binds, which fills the name template. */
export function grpcServerListenerName(ip: string, port: number): string {
  return `${GRPC_SERVER_LISTENER_PREFIX}${isIP(ip) === 6 ? `[${ip}]` : ip}:${port}`;
}

export function grpcServerListeners(model: Model, proxy: Proxy): Json[] {
  const ip = proxy.ip;
  if (!ip || isIP(ip) === 0) return [];
  // Every port of a proxyless gRPC workload speaks gRPC, whatever protocol its service port names.
  return inboundPorts(model, proxy).map((p) => {
    const name = `inbound|${p.port}||`;
    const tls = grpcServerTransportSocket(inboundMode(model, proxy, p.port));
    return {
      '@type': LISTENER,
      name: grpcServerListenerName(ip, p.port),
      address: { socket_address: { address: ip, port_value: p.port } },
      traffic_direction: 'INBOUND',
      filter_chains: [
        {
          name,
          ...(tls ? { transport_socket: tls } : {}),
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: httpConnectionManager(
                `inbound_${ip}_${p.port}`,
                {
                  inline: {
                    name,
                    virtual_hosts: [{ name, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, non_forwarding_action: {} }] }],
                  },
                },
                httpFilters({ model, proxy, side: 'inbound', port: p.port }),
              ),
            },
          ],
        },
      ],
    };
  });
}
