// Each cluster a route sends to: what it is (from its Istio-style name and the rules behind it),
// its endpoints by priority and locality (its ClusterLoadAssignment, from EDS or inline), and
// what the workload at each endpoint that takes traffic does with the request on its inbound side.
import type { ClientKind, Proxy } from '../translate/proxy.ts';
import type { Resources } from '../translate/translate.ts';
import { CLUSTER, ENDPOINTS } from '../translate/type-urls.ts';
import { endpointGroups } from './endpoints.ts';
import { evaluateInbound } from './inbound.ts';
import { callerIdentity, callerTls } from './tls.ts';
import type { MeshView, RuleIndex } from './origins.ts';
import type { HttpRequest } from './request.ts';
import type { Json } from '../json.ts';
import type { Destination } from './types.ts';

function parseClusterName(name: string): { host?: string; port?: number; subset?: string } {
  const m = /^outbound\|(\d+)\|([^|]*)\|(.+)$/.exec(name);
  return m ? { host: m[3], port: Number(m[1]), ...(m[2] ? { subset: m[2] } : {}) } : {};
}

export interface DestinationContext {
  view: MeshView;
  index: RuleIndex;
  /** The caller's generated config. */
  res: Resources;
  proxy: Proxy;
  targets: Array<{ name: string; weight: number }>;
  /** The request after the route's rewrites. */
  upstream: HttpRequest;
  calleeKind: ClientKind;
}

export function destinationsFor({ view, index, res, proxy, targets, upstream: upReq, calleeKind }: DestinationContext): { destinations: Destination[]; notes: string[] } {
  const destinations: Destination[] = [];
  const notes: string[] = [];
  const grpc = proxy.kind === 'grpc';
  const totalWeight = targets.reduce((s, t) => s + t.weight, 0);
  const cache = new Map();
  const clusters = res[CLUSTER] as Json[];
  const identity = callerIdentity(view.model, proxy);
  for (const t of targets) {
    const c = clusters.find((x) => x.name === t.name);
    const d: Destination = { cluster: t.name, ...parseClusterName(t.name), weight: t.weight, share: totalWeight ? t.weight / totalWeight : 0, rules: index.cluster(t.name), endpoints: [], inbound: [] };
    if (!c) d.problem = `no cluster ${t.name} is sent to this proxy: requests here fail (${grpc ? 'UNAVAILABLE' : '503 NC'})`;
    else if (c.type === 'ORIGINAL_DST') {
      notes.push(`${t.name} forwards to the address the caller connected to (original destination), outside the mesh's routing; no inbound policy of this mesh is evaluated for it`);
    } else {
      const cla = c.type === 'EDS' || c.eds_cluster_config ? (res[ENDPOINTS] as Json[]).find((e) => e.cluster_name === t.name) : (c.load_assignment as Json | undefined);
      const byLocality = grpc || !!(c.common_lb_config as Json | undefined)?.locality_weighted_lb_config;
      d.endpoints = endpointGroups(cla, proxy.locality, byLocality);
      if (!d.endpoints.some((g) => g.share > 0)) {
        const what = d.subset ? `subset ${d.subset}` : `cluster ${t.name}`;
        d.problem = `${what} has no endpoints now: its ${Number((d.share * 100).toFixed(2))}% share fails (${grpc ? 'UNAVAILABLE' : '503 no healthy upstream'})`;
      }
      if (c.type === 'LOGICAL_DNS' || c.type === 'STRICT_DNS') notes.push(`${t.name} is resolved by DNS (${d.endpoints.flatMap((g) => g.endpoints.map((e) => e.address)).join(', ')}); no inbound policy of this mesh is evaluated for it`);
      else {
        const seen = new Set<string>();
        for (const g of d.endpoints.filter((x) => x.share > 0)) {
          for (const e of g.endpoints) {
            const k = `${e.address}:${e.port}`;
            if (seen.has(k)) continue;
            seen.add(k);
            const caller = { tls: callerTls(c), ...(identity ? { identity } : {}) };
            d.inbound.push(evaluateInbound(view, index, e, calleeKind, { ...upReq, plane: calleeKind }, proxy.ip, cache, caller));
          }
        }
      }
    }
    if (d.share > 0) destinations.push(d);
  }
  return { destinations, notes };
}
