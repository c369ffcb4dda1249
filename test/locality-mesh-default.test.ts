// MeshConfig localityLbSetting (serve/translate/explain --mesh-config): the default under every
// DestinationRule's. A destination without a rule, or whose rule's loadBalancer has no
// localityLbSetting, takes the mesh's; a rule's own setting replaces it, and `enabled` follows the
// mesh unless the rule says (Istio's reading). Checked on the EDS a caller gets (Envoy's protos),
// and the file's errors are positioned like a DestinationRule's.
import { describe, expect, it } from 'vitest';
import { parseMeshConfig } from '../control-plane/config/mesh-config.ts';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import { DEFAULT_MESH, type MeshSettings } from '../control-plane/model/mesh-identity.ts';
import type { Model } from '../control-plane/model/types.ts';
import { clusterLoadAssignment } from '../control-plane/translate/endpoints.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { destinationRule, endpointsAt, serviceEntry, yamlDocs } from './helpers/yaml-builders.ts';

const HOST = 'svc.default.svc.cluster.local';
const ENDPOINTS = ['10.0.0.1@r1/a', '10.0.0.2@r2/b', '10.0.0.3@r3/c'];

function build(trafficPolicy: Record<string, unknown> | undefined, mesh: Partial<MeshSettings>) {
  const se = serviceEntry({ name: 'svc', hosts: [HOST], location: 'MESH_INTERNAL', ports: [{ number: 80, name: 'grpc', protocol: 'GRPC' }], endpoints: endpointsAt(ENDPOINTS) });
  const text = trafficPolicy ? yamlDocs(se, destinationRule({ name: 'svc', host: HOST, trafficPolicy })) : se;
  const state = compile(parseConfigText('m.yaml', text), [], undefined, { ...DEFAULT_MESH, ...mesh });
  expect(state.errors.map(formatIssue)).toEqual([]);
  return state.model;
}

const caller = (region: string, zone: string) =>
  proxyFromNode({ id: 'sidecar~10.9.9.9~c-1.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' }, locality: { region, zone } });

/** address -> priority in the EDS the caller in r1/a gets (checked against Envoy's protos). */
function priorities(model: Model): Record<string, number> {
  const c = model.clusters.find((x) => x.name === `outbound|80||${HOST}`)!;
  const eds = clusterLoadAssignment(c, caller('r1', 'a'), new TranslateMemo()) as { endpoints: Array<{ priority?: number; lb_endpoints: Array<{ endpoint: { address: { socket_address: { address: string } } } }> }> };
  expect(checkResource(eds as never)).toEqual([]);
  const out: Record<string, number> = {};
  for (const g of eds.endpoints) for (const l of g.lb_endpoints) out[l.endpoint.address.socket_address.address] = g.priority ?? 0;
  return out;
}

const FAILOVER_TO_R3 = { failover: [{ from: 'r1', to: 'r3' }] };
const OUTLIERS = { outlierDetection: { consecutive5xxErrors: 3 } };
// Without any setting: same zone, then other regions at one level (r2 and r3 alike).
const PLAIN = { '10.0.0.1': 0, '10.0.0.2': 1, '10.0.0.3': 1 };
// With r1 -> r3 failover: r3 before r2.
const TO_R3 = { '10.0.0.1': 0, '10.0.0.3': 1, '10.0.0.2': 2 };
const OFF = { '10.0.0.1': 0, '10.0.0.2': 0, '10.0.0.3': 0 };

describe('MeshConfig localityLbSetting', () => {
  it('applies to a destination without a DestinationRule, and to one whose loadBalancer sets none', () => {
    expect(priorities(build(undefined, {}))).toEqual(PLAIN);
    expect(priorities(build(undefined, { localityLbSetting: FAILOVER_TO_R3 }))).toEqual(TO_R3);
    expect(priorities(build({ ...OUTLIERS, loadBalancer: { simple: 'ROUND_ROBIN' } }, { localityLbSetting: FAILOVER_TO_R3 }))).toEqual(TO_R3);
  });

  it("a DestinationRule's own setting replaces the mesh's", () => {
    const own = { ...OUTLIERS, loadBalancer: { localityLbSetting: { failover: [{ from: 'r1', to: 'r2' }] } } };
    expect(priorities(build(own, { localityLbSetting: FAILOVER_TO_R3 }))).toEqual({ '10.0.0.1': 0, '10.0.0.2': 1, '10.0.0.3': 2 });
  });

  it('enabled: false in the mesh turns it off unless a rule turns it on; a rule without `enabled` follows the mesh', () => {
    expect(priorities(build(undefined, { localityLbSetting: { enabled: false } }))).toEqual(OFF);
    expect(priorities(build({ ...OUTLIERS, loadBalancer: { localityLbSetting: FAILOVER_TO_R3 } }, { localityLbSetting: { enabled: false } }))).toEqual(OFF);
    expect(priorities(build({ ...OUTLIERS, loadBalancer: { localityLbSetting: { ...FAILOVER_TO_R3, enabled: true } } }, { localityLbSetting: { enabled: false } }))).toEqual(TO_R3);
    // And a rule can turn it off under a mesh that has it on.
    expect(priorities(build({ loadBalancer: { localityLbSetting: { enabled: false } } }, { localityLbSetting: FAILOVER_TO_R3 }))).toEqual(OFF);
  });

  it('the mesh config file: read as a DestinationRule writes it, with positioned errors, and not listed as ignored', () => {
    const ok = parseMeshConfig('mesh.yaml', 'trustDomain: corp.example\nlocalityLbSetting:\n  failover:\n  - { from: r1, to: r3 }\n');
    expect(ok.settings.localityLbSetting).toEqual(FAILOVER_TO_R3);
    expect(ok.warning).toBeUndefined();
    expect(() => parseMeshConfig('mesh.yaml', 'localityLbSetting:\n  distribute:\n  - from: r1/*\n    to: { "r1/*": 70, "r2/*": 20 }\n')).toThrow(
      /^mesh\.yaml:4:\d+ localityLbSetting\.distribute\[0\]\.to: the weights add up to 90; they must add up to 100$/,
    );
    expect(() => parseMeshConfig('mesh.yaml', 'localityLbSetting:\n  failover:\n  - { from: r1, to: r1 }\n')).toThrow(/^mesh\.yaml:3:\d+ localityLbSetting\.failover\[0\]\.to: failover must name two different regions$/);
  });
});
