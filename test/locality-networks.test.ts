// Networks: a caller reaches endpoints in its own network (or in none) directly, and those in
// another network through that network's gateway, after all of its own; without a gateway they
// are left out, with a warning on the rule that declares them.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import type { Model } from '../control-plane/model/types.ts';
import { clusterLoadAssignment } from '../control-plane/translate/endpoints.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { topologyUse } from '../control-plane/translate/locality-priority.ts';
import { proxyFromNode, proxyGroupKey } from '../control-plane/translate/proxy.ts';
import { endpointsAt, serviceEntry } from './helpers/yaml-builders.ts';

const HOST = 'svc.default.svc.cluster.local';
const GATEWAYS = { n2: [{ address: '192.0.2.1', port: 15443 }] };

/** The ServiceEntry `svc` with one endpoint per `ip@locality[#network]`, compiled with these network gateways. */
function mesh(endpoints: string[], gateways: Record<string, Array<{ address: string; port: number }>> = GATEWAYS) {
  const text = serviceEntry({ name: 'svc', hosts: [HOST], ports: [{ number: 80, name: 'grpc', protocol: 'GRPC' }], endpoints: endpointsAt(endpoints) });
  return compile({ ...parseConfigText('m.yaml', text), networkGateways: gateways });
}

function caller(locality: string, network?: string) {
  const [region, zone] = locality.split('/');
  return proxyFromNode({
    id: 'sidecar~10.9.9.9~c-1.default~default.svc.cluster.local',
    metadata: { GENERATOR: 'grpc', ...(network ? { NETWORK: network } : {}) },
    locality: { ...(region ? { region } : {}), ...(zone ? { zone } : {}) },
  });
}

type Eds = { endpoints: Array<{ locality: Record<string, string>; priority?: number; load_balancing_weight: number; lb_endpoints: Array<{ endpoint: { address: { socket_address: { address: string; port_value: number } } }; load_balancing_weight?: number }> }> };

/** `priority locality: address:port*weight ...` per group, in output order. */
function view(model: Model, p: ReturnType<typeof caller>): string[] {
  const out = clusterLoadAssignment(model.clusters[0], p, new TranslateMemo());
  expect(checkResource(out as never)).toEqual([]);
  return (out as unknown as Eds).endpoints.map(
    (g) =>
      `${g.priority ?? 0} ${Object.values(g.locality).join('/')} w${g.load_balancing_weight}: ` +
      g.lb_endpoints.map((l) => `${l.endpoint.address.socket_address.address}:${l.endpoint.address.socket_address.port_value}*${l.load_balancing_weight ?? 1}`).join(' '),
  );
}

describe('networks', () => {
  const m = mesh(['10.0.0.1@r1/a#n1', '10.0.0.2@r1/a#n2', '10.0.0.3@r1/a#n2', '10.0.0.4@r1/b#n2', '10.0.0.5@r2/c']);

  it('sends a caller to other networks through their gateway, after its own network, weighted by what is behind it', () => {
    expect(m.errors).toEqual([]);
    expect(view(m.model, caller('r1/a', 'n1'))).toEqual([
      '0 r1/a w1: 10.0.0.1:80*1',
      '1 r2/c w1: 10.0.0.5:80*1', // no network: reachable from every network
      '2 r1/a w2: 192.0.2.1:15443*2',
      '3 r1/b w1: 192.0.2.1:15443*1',
    ]);
  });

  it('lets a caller in the other network reach its own endpoints directly', () => {
    expect(view(m.model, caller('r1/a', 'n2'))).toEqual([
      '0 r1/a w2: 10.0.0.2:80*1 10.0.0.3:80*1',
      '1 r1/b w1: 10.0.0.4:80*1',
      '2 r2/c w1: 10.0.0.5:80*1',
      // n1 has no gateway: its endpoint is left out for callers elsewhere.
    ]);
    expect(m.warnings.map(formatIssue)).toEqual([
      'm.yaml:17:16 spec.endpoints[0].network: network n1 has no gateway: callers in other networks do not get this endpoint (ServiceEntry default/svc)',
    ]);
  });

  it('a caller with a network but no locality gets its own network first, the rest through gateways', () => {
    expect(view(m.model, caller('', 'n1'))).toEqual([
      '0 r1/a w1: 10.0.0.1:80*1',
      '0 r2/c w1: 10.0.0.5:80*1',
      '1 r1/a w2: 192.0.2.1:15443*2',
      '1 r1/b w1: 192.0.2.1:15443*1',
    ]);
  });

  it('a caller without a network reaches every endpoint directly', () => {
    expect(view(m.model, caller('r1/a')).map((l) => l.split(':')[0])).toEqual(['0 r1/a w3', '1 r1/b w1', '2 r2/c w1']);
  });

  it('spreads over several gateways of a network, each network weighing what is behind it', () => {
    const gws = {
      n1: [{ address: '192.0.2.9', port: 15443 }],
      n2: [{ address: '192.0.2.1', port: 15443 }, { address: '192.0.2.2', port: 15443 }],
      n3: [{ address: '192.0.2.3', port: 15443 }],
    };
    const two = mesh(['10.0.0.1@r1/a#n1', '10.0.0.2@r1/a#n2', '10.0.0.3@r1/a#n3'], gws);
    expect(two.warnings).toEqual([]);
    // n2's one endpoint is shared by two gateways, n3's by one: scaled by 2, the networks get 1:1.
    expect(view(two.model, caller('r1/a', 'n1'))).toEqual(['0 r1/a w1: 10.0.0.1:80*1', '1 r1/a w2: 192.0.2.1:15443*1 192.0.2.2:15443*1 192.0.2.3:15443*2']);
  });

  it('puts the caller network in the group key only when endpoints have networks', () => {
    const key = (model: Model, p: ReturnType<typeof caller>) => proxyGroupKey(p, false, new Set(), topologyUse(model));
    expect(key(m.model, caller('r1/a', 'n1'))).not.toBe(key(m.model, caller('r1/a', 'n2')));
    const plain = mesh(['10.0.0.1@r1/a', '10.0.0.2@r1/a']);
    expect(key(plain.model, caller('r1/a', 'n1'))).toBe(key(plain.model, caller('r2/b', 'n2')));
  });

  it('a gateway change changes the clusters behind it, so reuse cannot keep a stale view', () => {
    const moved = mesh(['10.0.0.1@r1/a#n1', '10.0.0.2@r1/a#n2', '10.0.0.3@r1/a#n2', '10.0.0.4@r1/b#n2', '10.0.0.5@r2/c'], { n2: [{ address: '192.0.2.7', port: 15443 }] });
    expect(moved.model.clusters[0].networkGateways).toEqual({ n1: [], n2: [{ address: '192.0.2.7', port: 15443 }] });
    expect(JSON.stringify(moved.model.clusters[0])).not.toBe(JSON.stringify(m.model.clusters[0]));
  });
});
