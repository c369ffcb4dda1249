// The workload's own ports: every service port with an endpoint at this proxy's IP. Inbound
// traffic for them goes through Envoy to the app on 127.0.0.1.
import { endpointPort } from '../model/services.ts';
import type { Model, Protocol } from '../model/types.ts';
import type { Proxy } from './proxy.ts';
import type { Json } from '../json.ts';
import { upstreamProtocolOptions } from './protocol-options.ts';
import { CLUSTER } from './type-urls.ts';

export interface InboundPort { port: number; protocol: Protocol; cluster: string }

export function inboundPorts(model: Model, proxy: Proxy): InboundPort[] {
  if (!proxy.ip) return [];
  const byPort = new Map<number, InboundPort>();
  for (const svc of model.services) {
    for (const ep of svc.endpoints) {
      if (ep.address !== proxy.ip) continue;
      for (const sp of svc.ports) {
        const port = endpointPort(ep, sp);
        if (!byPort.has(port)) byPort.set(port, { port, protocol: sp.protocol, cluster: `inbound|${port}||` });
      }
    }
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}

export function inboundCluster(p: InboundPort): Json {
  return {
    '@type': CLUSTER,
    name: p.cluster,
    type: 'STATIC',
    connect_timeout: '10s',
    load_assignment: { cluster_name: p.cluster, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p.port } } } }] }] },
    ...upstreamProtocolOptions(p.protocol, undefined),
  };
}
