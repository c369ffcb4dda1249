// Generates the benchmark mesh: S services x E endpoints as Istio YAML, one file per object kind and
// service so a change rewrites one small file (as an operator or a controller would).
//   se-NNNN.yaml  ServiceEntry, STATIC, endpoints on 10.x addresses; every endpoint's port carries a
//                 generation marker (PORT_BASE + generation) so proxies can tell which change they got
//   dr-NNNN.yaml  DestinationRule with subsets v1, v2
//   vs-NNNN.yaml  VirtualService, weighted split v1/v2 (90/10 initially)
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export const PORT = 9080;
/** Endpoint port of generation 0; generation g uses PORT_BASE + g. */
export const PORT_BASE = 20000;
export const SUBSETS = ['v1', 'v2'] as const;

export const svcName = (i: number) => `svc-${String(i).padStart(4, '0')}`;
export const svcHost = (i: number) => `${svcName(i)}.default.svc.cluster.local`;
/** What a proxyless gRPC client dials and subscribes LDS to. */
export const listenerName = (i: number) => `${svcHost(i)}:${PORT}`;
export const clusterName = (i: number, subset: string) => `outbound|${PORT}|${subset}|${svcHost(i)}`;

export interface MeshShape {
  services: number;
  endpoints: number;
}

export function endpointAddress(svc: number, ep: number): string {
  return `10.${(svc >> 8) & 255}.${svc & 255}.${ep + 1}`;
}

export function serviceEntryYaml(svc: number, endpoints: number, generation: number): string {
  const port = PORT_BASE + generation;
  const eps: string[] = [];
  for (let e = 0; e < endpoints; e++) {
    // 80% of the endpoints are v1, the rest v2; two zones.
    const version = e < Math.ceil(endpoints * 0.8) ? 'v1' : 'v2';
    const zone = e % 2 === 0 ? 'zone-a' : 'zone-b';
    eps.push(`  - { address: ${endpointAddress(svc, e)}, ports: { grpc: ${port} }, labels: { app: ${svcName(svc)}, version: ${version} }, locality: us-east/${zone} }`);
  }
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${svcName(svc)}, namespace: default }
spec:
  hosts: [${svcHost(svc)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${PORT}, name: grpc, protocol: GRPC }]
  endpoints:
${eps.join('\n')}
`;
}

export function destinationRuleYaml(svc: number): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${svcName(svc)}, namespace: default }
spec:
  host: ${svcHost(svc)}
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
}

export function virtualServiceYaml(svc: number, w1: number): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${svcName(svc)}, namespace: default }
spec:
  hosts: [${svcHost(svc)}]
  http:
  - name: split
    route:
    - { destination: { host: ${svcHost(svc)}, subset: v1 }, weight: ${w1} }
    - { destination: { host: ${svcHost(svc)}, subset: v2 }, weight: ${100 - w1} }
`;
}

/** Writes the whole mesh into `dir` (created if needed). */
export function writeMesh(dir: string, shape: MeshShape): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < shape.services; i++) {
    writeFileSync(join(dir, `se-${String(i).padStart(4, '0')}.yaml`), serviceEntryYaml(i, shape.endpoints, 0));
    writeFileSync(join(dir, `dr-${String(i).padStart(4, '0')}.yaml`), destinationRuleYaml(i));
    writeFileSync(join(dir, `vs-${String(i).padStart(4, '0')}.yaml`), virtualServiceYaml(i, 90));
  }
}

/** Replaces a file's content in one step (write + rename), as editors and ConfigMap volumes do. */
export function replaceFile(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * The services proxy `p` talks to: the shared "hot" service 0 (a dependency every workload has,
 * like an auth or config service) plus `scope - 1` others from a window that slides with p, so
 * scopes overlap and every service is used by some proxies.
 */
export function proxyScope(p: number, scope: number, services: number): number[] {
  const out = [0];
  const span = services - 1;
  const start = (p * 7) % span;
  for (let k = 0; k < scope - 1; k++) out.push(1 + ((start + k) % span));
  return out;
}

/** Label key on sidecars that a bench `Sidecar` selects on (value `s<k>`). */
export const SCOPE_LABEL = 'bench-scope';

/**
 * The services Sidecar `k` of `count` lets its workloads see: service 0 (the shared dependency) and
 * a window of `scope - 1` others, the windows spread over the mesh.
 */
export function sidecarScopeServices(k: number, count: number, scope: number, services: number): number[] {
  const span = services - 1;
  const start = Math.floor((k * span) / count);
  const out = [0];
  for (let j = 0; j < scope - 1; j++) out.push(1 + ((start + j) % span));
  return out;
}

/** An Istio Sidecar for workloads labelled `bench-scope: s<k>` whose egress names these services. */
export function sidecarYaml(k: number, svcs: readonly number[]): string {
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: scope-${k}, namespace: default }
spec:
  workloadSelector: { labels: { ${SCOPE_LABEL}: s${k} } }
  egress:
  - hosts: [${svcs.map((s) => `"./${svcHost(s)}"`).join(', ')}]
`;
}

/** Writes `count` Sidecars (sidecar-NN.yaml), each scoping its workloads to `scope` services. */
export function writeSidecars(dir: string, count: number, scope: number, services: number): void {
  for (let k = 0; k < count; k++) writeFileSync(join(dir, `sidecar-${String(k).padStart(2, '0')}.yaml`), sidecarYaml(k, sidecarScopeServices(k, count, scope, services)));
}
