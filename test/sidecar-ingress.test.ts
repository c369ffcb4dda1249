// Sidecar ingress listeners: the ports they name replace the workload's service-derived inbound
// ports, each to its defaultEndpoint; `0.0.0.0:PORT` is the workload's own IP, so proxies that
// differ only by IP get their own group (and their own inbound cluster endpoint).
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER, LISTENER, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { ProxyGroups } from '../control-plane/xds/proxy-groups.ts';

const RULES = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: api, namespace: default }
spec:
  workloadSelector: { labels: { app: api } }
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http }
    defaultEndpoint: 0.0.0.0:8080
  - port: { number: 9443, protocol: TCP, name: tcp }
    defaultEndpoint: unix:///var/run/api.sock
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: default }
spec:
  hosts: [api.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7000, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.1.0.5 }]
`;

const node = (ip: string, app: string) => proxyFromNode({ id: `sidecar~${ip}~${app}-1.default~default.svc.cluster.local`, metadata: { NAMESPACE: 'default', LABELS: { app } } });
const inboundClusters = (res: ReturnType<typeof translate>) => res[CLUSTER].filter((c) => String(c.name).startsWith('inbound|')).map((c) => [c.name, (c as any).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address]);

describe('Sidecar ingress', () => {
  const state = compile(parseConfigText('rules.yaml', RULES));
  it('replaces the service-derived inbound ports with its own, each to its defaultEndpoint', () => {
    expect(state.errors).toEqual([]);
    const res = translate(state.model, node('10.1.0.5', 'api'));
    for (const t of TYPE_ORDER) for (const r of res[t]) expect(checkResource(r), String(r.name ?? r.cluster_name)).toEqual([]);
    expect(inboundClusters(res)).toEqual([
      ['inbound|9080||', { socket_address: { address: '10.1.0.5', port_value: 8080 } }],
      ['inbound|9443||', { pipe: { path: '/var/run/api.sock' } }],
    ]);
    const chains = ((res[LISTENER].find((l) => l.name === 'virtualInbound') as any).filter_chains as any[]).map((c) => c.name);
    expect(chains.some((n: string) => n.startsWith('inbound|7000'))).toBe(false);
    expect(chains.filter((n: string) => n.startsWith('inbound|9080') || n.startsWith('inbound|9443')).length).toBeGreaterThan(1);
    // A workload the Sidecar does not select keeps the service-derived port.
    expect(inboundClusters(translate(state.model, node('10.1.0.5', 'web')))).toEqual([['inbound|7000||', { socket_address: { address: '127.0.0.1', port_value: 7000 } }]]);
  });

  it('0.0.0.0:PORT puts the IP in the group key: two pods of one workload, neither an endpoint, get their own IPs', () => {
    const groups = new ProxyGroups();
    groups.update(state.model);
    const a = node('10.9.0.1', 'api');
    const b = node('10.9.0.2', 'api');
    expect(groups.groupOf(a)).not.toBe(groups.groupOf(b));
    expect(inboundClusters(translate(state.model, b))[0]).toEqual(['inbound|9080||', { socket_address: { address: '10.9.0.2', port_value: 8080 } }]);
    // Without such an ingress, IPs that are no endpoint share a group.
    const plain = compile(parseConfigText('rules.yaml', RULES.replace('0.0.0.0:8080', '127.0.0.1:8080')));
    const g2 = new ProxyGroups();
    g2.update(plain.model);
    expect(g2.groupOf(node('10.9.0.1', 'api'))).toBe(g2.groupOf(node('10.9.0.2', 'api')));
  });
});
