// The workload's own ports: every service port with an endpoint at this proxy's IP. Inbound
// traffic for them goes through Envoy to the app on 127.0.0.1.
import { endpointPort } from '../model/services.ts';
import type { Model, Protocol } from '../model/types.ts';
import type { Proxy } from './proxy.ts';
import type { Json } from '../json.ts';
import { upstreamProtocolOptions } from './protocol-options.ts';
import { CLUSTER } from './type-urls.ts';
import { proxyScope } from './scope.ts';

export interface InboundPort {
  port: number;
  protocol: Protocol;
  cluster: string;
  /** Where the app listens (a Sidecar's ingress defaultEndpoint); absent: 127.0.0.1 on the same port. */
  endpoint?: { ip: string; port: number } | { pipe: string };
}

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

/**
 * The workload's inbound ports as Envoy serves them: a Sidecar's `ingress` listeners when the
 * Sidecar in force has some (only those ports, each to its defaultEndpoint), else the service-derived
 * ones. `0.0.0.0:PORT` is the workload's own IP, as Istio reads it.
 */
export function sidecarInboundPorts(model: Model, proxy: Proxy): InboundPort[] {
  const ingress = proxyScope(model, proxy).sidecar?.ingress ?? [];
  if (ingress.length === 0) return inboundPorts(model, proxy);
  const out = ingress.map((l): InboundPort => ({ port: l.port, protocol: l.protocol, cluster: `inbound|${l.port}||`, ...endpointOf(l.defaultEndpoint, proxy) }));
  return out.sort((a, b) => a.port - b.port);
}

function endpointOf(e: string | undefined, proxy: Proxy): Pick<InboundPort, 'endpoint'> {
  if (!e) return {};
  if (e.startsWith('unix://')) return { endpoint: { pipe: e.slice('unix://'.length) } };
  const [ip, port] = e.split(':');
  return { endpoint: { ip: ip === '0.0.0.0' ? (proxy.ip ?? '127.0.0.1') : ip!, port: Number(port) } };
}

export function inboundCluster(p: InboundPort): Json {
  return {
    '@type': CLUSTER,
    name: p.cluster,
    type: 'STATIC',
    connect_timeout: '10s',
    load_assignment: { cluster_name: p.cluster, endpoints: [{ lb_endpoints: [{ endpoint: { address: address(p) } }] }] },
    ...upstreamProtocolOptions(p.protocol, undefined),
  };
}

function address(p: InboundPort): Json {
  const e = p.endpoint;
  if (e && 'pipe' in e) return { pipe: { path: e.pipe } };
  return { socket_address: { address: e?.ip ?? '127.0.0.1', port_value: e?.port ?? p.port } };
}
