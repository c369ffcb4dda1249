// Golden files: rule YAML in test/golden/in/<case>.yaml -> every xDS resource for a sidecar and a
// proxyless gRPC client in test/golden/out/<case>.<client>.json, plus rule errors and warnings in
// <case>.issues.txt. UPDATE_GOLDEN=1 rewrites the outputs and deletes orphans. Every generated
// resource must also pass Envoy's schema check, so a golden file can never record invalid config.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import type { LoadResult } from '../control-plane/config/types.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import { parseMeshConfig } from '../control-plane/config/mesh-config.ts';
import { DEFAULT_MESH } from '../control-plane/model/mesh-identity.ts';
import { proxyFromNode, type NodeInfo } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER, ENDPOINTS, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';

const DIR = path.join('test', 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const CLIENTS = {
  sidecar: proxyFromNode({
    id: 'sidecar~10.0.0.9~productpage-v1-1.default~default.svc.cluster.local',
    metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v1' } },
  }),
  grpc: proxyFromNode({
    id: 'sidecar~10.0.0.10~reviews-v2-1.default~default.svc.cluster.local',
    metadata: { NAMESPACE: 'default', GENERATOR: 'grpc', LABELS: { app: 'reviews', version: 'v2' } },
  }),
};

const cases = fs.readdirSync(path.join(DIR, 'in')).filter((f) => f.endsWith('.yaml') && !f.endsWith('.mesh.yaml')).map((f) => f.replace(/\.yaml$/, '')).sort();
const expectedOutputs = new Set<string>();

function golden(file: string, actual: string): void {
  expectedOutputs.add(file);
  const full = path.join(DIR, 'out', file);
  if (UPDATE || !fs.existsSync(full)) {
    fs.writeFileSync(full, actual);
    if (!UPDATE) throw new Error(`golden file ${full} was missing; it has been written, check it in`);
    return;
  }
  expect(actual, `${full} differs (run npm run golden:update if the change is intended)`).toBe(fs.readFileSync(full, 'utf8'));
}

describe('golden translation', () => {
  for (const c of cases) {
    it(c, () => {
      const file = path.join(DIR, 'in', `${c}.yaml`);
      // Optional <case>.topology.json: network gateways, and callers (locality, metadata such as
      // NETWORK or LABELS) whose own EDS view is recorded in <case>.eds.<caller>.json.
      const topoFile = path.join(DIR, 'in', `${c}.topology.json`);
      const topo: { networkGateways?: LoadResult['networkGateways']; callers?: Record<string, Omit<NodeInfo, 'id'>>; routers?: Record<string, Omit<NodeInfo, 'id'>> } = fs.existsSync(topoFile)
        ? JSON.parse(fs.readFileSync(topoFile, 'utf8'))
        : {};
      // Optional <case>.mesh.yaml: the mesh config file (--mesh-config).
      const meshFile = path.join(DIR, 'in', `${c}.mesh.yaml`);
      const mesh = fs.existsSync(meshFile) ? { ...DEFAULT_MESH, ...parseMeshConfig(meshFile, fs.readFileSync(meshFile, 'utf8')).settings } : undefined;
      const load = parseConfigText(file, fs.readFileSync(file, 'utf8'));
      const state = compile(topo.networkGateways ? { ...load, networkGateways: topo.networkGateways } : load, [], undefined, mesh);
      const issues = [...state.errors.map((e) => `error: ${formatIssue(e)}`), ...state.warnings.map((w) => `warning: ${formatIssue(w)}`)];
      golden(`${c}.issues.txt`, issues.join('\n') + '\n');
      for (const [client, proxy] of Object.entries(CLIENTS)) {
        const res = translate(state.model, proxy);
        const all = TYPE_ORDER.flatMap((t) => res[t]);
        for (const r of all) expect(checkResource(r), `${client} ${String(r.name ?? r.cluster_name)}`).toEqual([]);
        golden(`${c}.${client}.json`, JSON.stringify(all, null, 2) + '\n');
      }
      for (const [name, node] of Object.entries(topo.callers ?? {})) {
        const proxy = proxyFromNode({ id: `sidecar~10.0.0.11~${name}-1.default~default.svc.cluster.local`, ...node, metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', ...node.metadata } });
        const eds = translate(state.model, proxy)[ENDPOINTS];
        for (const r of eds) expect(checkResource(r), `${name} ${String(r.cluster_name)}`).toEqual([]);
        golden(`${c}.eds.${name}.json`, JSON.stringify(eds, null, 2) + '\n');
      }
      // Gateways (node type router): their clusters, where credentialName applies (credentials/access.ts).
      for (const [name, node] of Object.entries(topo.routers ?? {})) {
        const proxy = proxyFromNode({ id: `router~10.0.0.12~${name}-1.default~default.svc.cluster.local`, ...node });
        const cds = translate(state.model, proxy)[CLUSTER];
        for (const r of cds) expect(checkResource(r), `${name} ${String(r.name)}`).toEqual([]);
        golden(`${c}.router.${name}.json`, JSON.stringify(cds, null, 2) + '\n');
      }
    });
  }

  it('has no orphaned outputs', () => {
    const orphans = fs.readdirSync(path.join(DIR, 'out')).filter((f) => cases.every((c) => !f.startsWith(`${c}.`)));
    if (UPDATE) for (const o of orphans) fs.unlinkSync(path.join(DIR, 'out', o));
    else expect(orphans).toEqual([]);
  });
});
