// The translator memoizes per model object (clusters, endpoints, and for gRPC each route table's
// listeners and route config). After any edit, what a proxy gets must equal a translation from
// scratch: a deep copy of the model shares no object with any memo, so translating it computes
// everything anew.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDirectory } from '../control-plane/config/load.ts';
import { reuseUnchanged } from '../control-plane/model/reuse.ts';
import type { Model } from '../control-plane/model/types.ts';
import { compile, type MeshState } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { silentLogger } from '../control-plane/log.ts';
import { SnapshotCache } from '../control-plane/xds/snapshot-cache.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshpilot-translate-memo-'));
cpSync('examples/bookinfo', dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const proxies = [
  proxyFromNode({ id: 'grpc-a', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v1' } } }),
  proxyFromNode({ id: 'grpc-b', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'reviews', version: 'v2' } } }),
  proxyFromNode({ id: 'grpc-c', metadata: { GENERATOR: 'grpc', NAMESPACE: 'other' } }),
  proxyFromNode({ id: 'sidecar~10.9.9.9~pp-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage' } } }),
  // A sidecar whose IP is an endpoint of the services: it has an inbound side.
  proxyFromNode({ id: 'sidecar~127.0.0.1~reviews-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'reviews' } } }),
  // A gRPC server: its IP is an endpoint of a service, so it has server listeners.
  proxyFromNode({ id: 'sidecar~127.0.0.1~ratings-1.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'ratings' } } }),
];

const edit = (file: string, from: string, to: string) => {
  const path = join(dir, file);
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} has no "${from}"`);
  writeFileSync(path, text.replace(from, to));
};
const add = (file: string, text: string) => writeFileSync(join(dir, file), text);

const steps: Array<[string, () => void]> = [
  ['weights', () => edit('reviews-canary.yaml', 'weight: 90', 'weight: 60')],
  ['consistent hash on the destination cluster', () => edit('destination-rules.yaml', '  host: reviews.default.svc.cluster.local\n', '  host: reviews.default.svc.cluster.local\n  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }\n')],
  ['a rate limit', () => add('limit.yaml', 'apiVersion: traffic.meshpilot.io/v1alpha1\nkind: RateLimit\nmetadata: {name: reviews}\nspec:\n  destination: {host: reviews}\n  limit: {requests: 10, per: 1s}\n  overrides:\n  - source: {labels: {app: reviews}}\n    limit: {requests: 3, per: 1s}\n')],
  ['a fault', () => edit('reviews-canary.yaml', '  - name: v3-canary\n', '  - name: v3-canary\n    fault: { abort: { httpStatus: 503, percentage: { value: 5 } } }\n')],
  ['a source-scoped route', () => edit('reviews-canary.yaml', '  - name: v3-canary\n', '  - name: from-reviews\n    match: [{ sourceLabels: { app: reviews } }]\n    route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v3 } }]\n  - name: v3-canary\n')],
  ['the rate limit changed', () => edit('limit.yaml', 'requests: 10', 'requests: 20')],
  ['an endpoint port', () => edit('services.yaml', 'ports: { grpc: 19081 }', 'ports: { grpc: 19181 }')],
  ['a new endpoint', () => edit('services.yaml', '  - address: 127.0.0.1\n    ports: { grpc: 19082 }\n', '  - address: 127.0.0.1\n    ports: { grpc: 19082 }\n  - address: 127.0.0.2\n    ports: { grpc: 19082 }\n')],
  ['the hash policy removed', () => edit('destination-rules.yaml', '  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }\n', '')],
  // A VIP is a domain of the service's virtual host: only the ServiceEntry changes.
  ['a VIP address added', () => edit('services.yaml', '  hosts: [reviews.default.svc.cluster.local]\n', '  hosts: [reviews.default.svc.cluster.local]\n  addresses: [192.0.2.10]\n')],
  ['the VIP address changed', () => edit('services.yaml', '  addresses: [192.0.2.10]\n', '  addresses: [192.0.2.11]\n')],
  // Sidecar scoping and exportTo (translate/scope.ts): what each proxy sees changes with them.
  ['a Sidecar limiting productpage to reviews', () => add('sidecar.yaml', 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: pp, namespace: default}\nspec:\n  workloadSelector: {labels: {app: productpage}}\n  egress:\n  - hosts: ["./reviews.default.svc.cluster.local"]\n')],
  ['an endpoint change under a Sidecar', () => edit('services.yaml', 'ports: { grpc: 19181 }', 'ports: { grpc: 19281 }')],
  ['the Sidecar egress widened, REGISTRY_ONLY', () => edit('sidecar.yaml', '  - hosts: ["./reviews.default.svc.cluster.local"]\n', '  - hosts: ["./reviews.default.svc.cluster.local", "./ratings.default.svc.cluster.local"]\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n')],
  ['a namespace-wide Sidecar in the root namespace', () => add('root-sidecar.yaml', 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: istio-system}\nspec:\n  egress:\n  - hosts: ["./*"]\n')],
  ['a service exported only to its namespace', () => add('private.yaml', 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: vault, namespace: other}\nspec:\n  hosts: [vault.other.svc.cluster.local]\n  exportTo: ["."]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{number: 8200, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.7.0.1}]\n')],
  ['its exportTo opened to default', () => edit('private.yaml', 'exportTo: ["."]', 'exportTo: [".", default]')],
  ['a VirtualService exported only to its namespace', () => edit('reviews-canary.yaml', 'spec:\n', 'spec:\n  exportTo: ["."]\n')],
  ['the Sidecar removed', () => add('sidecar.yaml', '')],
];

describe('memoized translation after edits', () => {
  let state: MeshState = compile(loadDirectory(dir));
  let model: Model = state.model;
  // One memo through every edit, as the snapshot cache keeps one; the other side starts afresh.
  const memo = new TranslateMemo();
  for (const p of proxies) translate(model, p, memo);
  const incremental = new SnapshotCache(silentLogger);
  incremental.setModel(model);
  for (const p of proxies) incremental.snapshotFor(p);
  for (const [what, step] of steps) {
    it(`equals a translation from scratch after: ${what}`, () => {
      step();
      const next = compile(loadDirectory(dir), state.accepted);
      expect(next.errors).toEqual([]);
      model = reuseUnchanged(next.model, model);
      state = { ...next, model };
      for (const p of proxies) expect(translate(model, p, memo)).toEqual(translate(structuredClone(model), p));
      // The cache builds each group's snapshot from its previous one where the change is local
      // (translate/changes.ts): it must hold what a cache seeing only this model builds.
      incremental.setModel(model);
      const fresh = new SnapshotCache(silentLogger);
      fresh.setModel(structuredClone(model));
      const contents = (c: SnapshotCache, p: (typeof proxies)[number]) => {
        const snap = c.snapshotFor(p);
        return TYPE_ORDER.map((t) => [...snap[t]].map(([name, r]) => `${name}=${r.hash}`));
      };
      for (const p of proxies) expect(contents(incremental, p)).toEqual(contents(fresh, p));
    });
  }
});
