// npm run bench -- --only sidecar   (runs after the proxy scenarios otherwise; --quick: 300 services)
//
// What an Envoy sidecar receives from bench/mesh.ts's mesh (S services x E endpoints) with and
// without a Sidecar naming 5 dependencies: bytes of encoded resources (checked and encoded as the
// snapshot cache does), counts of clusters, endpoints and virtual hosts, and the time to translate
// and encode a fresh group (median of several runs, a new translator memory each). Lower bound, in
// the same run: those 5 dependencies' resources as the unscoped translation has them (their
// clusters and ClusterLoadAssignments, their virtual hosts in one route config, the fixed
// listeners and passthrough clusters), only encoded: no translation at all.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDirectory } from '../control-plane/config/load.ts';
import { checkAndEncode } from '../control-plane/envoy/check.ts';
import type { Json } from '../control-plane/json.ts';
import { compile } from '../control-plane/model/compile.ts';
import type { Model } from '../control-plane/model/types.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { proxyFromNode, type Proxy } from '../control-plane/translate/proxy.ts';
import { translate, type Resource } from '../control-plane/translate/translate.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { svcHost, writeMesh } from './mesh.ts';

export interface SidecarBenchOptions { services: number; endpoints: number; runs: number }

interface Figures { bytes: number; clusters: number; endpoints: number; vhosts: number; ms: number }
export interface SidecarBenchResult { services: number; endpoints: number; unscoped: Figures; scoped: Figures; lowerBound: Figures }

const DEPS = 5;

function encodeAll(resources: readonly Resource[]): number {
  let bytes = 0;
  for (const r of resources) {
    const enc = checkAndEncode(r);
    if ('violations' in enc) throw new Error(`invalid resource ${String(r.name ?? r.cluster_name)}: ${JSON.stringify(enc.violations)}`);
    bytes += enc.any.value.length;
  }
  return bytes;
}

function counts(resources: readonly Resource[]): Omit<Figures, 'bytes' | 'ms'> {
  let clusters = 0;
  let endpoints = 0;
  let vhosts = 0;
  for (const r of resources) {
    if (r['@type'] === CLUSTER && String(r.name).startsWith('outbound|')) clusters++;
    if (r['@type'] === ENDPOINTS) for (const l of (r.endpoints as Json[] | undefined) ?? []) endpoints += ((l.lb_endpoints as Json[] | undefined) ?? []).length;
    if (r['@type'] === ROUTE_CONFIG) vhosts += ((r.virtual_hosts as Json[] | undefined) ?? []).filter((v) => v.name !== 'allow_any' && v.name !== 'block_all').length;
  }
  return { clusters, endpoints, vhosts };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Translate + encode a fresh group, `runs` times: the median time, and the figures of the last. */
function measure(model: Model, proxy: Proxy, runs: number): Figures {
  const times: number[] = [];
  let all: Resource[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const res = translate(model, proxy, new TranslateMemo());
    all = TYPE_ORDER.flatMap((t) => res[t]);
    bytes = encodeAll(all);
    times.push(performance.now() - t0);
  }
  return { bytes, ...counts(all), ms: median(times) };
}

/** The dependencies' resources picked out of the unscoped translation, only encoded. */
function lowerBound(model: Model, proxy: Proxy, hosts: ReadonlySet<string>, runs: number): Figures {
  const full = translate(model, proxy, new TranslateMemo());
  const mine = (name: string) => [...hosts].some((h) => name.endsWith(`|${h}`));
  const picked: Resource[] = [
    ...full[CLUSTER].filter((c) => mine(String(c.name)) || !String(c.name).startsWith('outbound|')),
    ...full[ENDPOINTS].filter((c) => mine(String(c.cluster_name))),
    ...full[LISTENER],
    ...full[ROUTE_CONFIG].map((rc) => ({ ...rc, virtual_hosts: (rc.virtual_hosts as Json[]).filter((v) => hosts.has(String(v.name).split(':')[0]) || v.name === 'allow_any') })),
  ];
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    bytes = encodeAll(picked);
    times.push(performance.now() - t0);
  }
  return { bytes, ...counts(picked), ms: median(times) };
}

export async function runSidecarBench(o: SidecarBenchOptions, log: (s: string) => void): Promise<SidecarBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-bench-sidecar-'));
  try {
    writeMesh(dir, { services: o.services, endpoints: o.endpoints });
    const deps = Array.from({ length: DEPS }, (_, i) => svcHost(Math.floor((i * o.services) / DEPS)));
    writeFileSync(join(dir, 'sidecar.yaml'), `apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: scoped, namespace: default }\nspec:\n  workloadSelector: { labels: { app: scoped } }\n  egress:\n  - hosts: [${deps.map((h) => `"./${h}"`).join(', ')}]\n`);
    log(`sidecar scope: ${o.services} services x ${o.endpoints} endpoints, ${DEPS} dependencies`);
    const state = compile(loadDirectory(dir));
    if (state.errors.length) throw new Error(`bench mesh has errors: ${state.errors[0]!.message}`);
    const node = (app: string) => proxyFromNode({ id: `sidecar~10.200.0.1~${app}-1.default~default.svc.cluster.local`, metadata: { NAMESPACE: 'default', LABELS: { app } } });
    const unscoped = measure(state.model, node('web'), o.runs);
    const scoped = measure(state.model, node('scoped'), o.runs * 5);
    const lb = lowerBound(state.model, node('web'), new Set(deps), o.runs * 5);
    return { services: o.services, endpoints: o.endpoints, unscoped, scoped, lowerBound: lb };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatSidecarBench(r: SidecarBenchResult): string {
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const row = (name: string, f: Figures) => `${name.padEnd(34)} ${kb(f.bytes).padStart(12)} ${String(f.clusters).padStart(9)} ${String(f.endpoints).padStart(10)} ${String(f.vhosts).padStart(7)} ${f.ms.toFixed(2).padStart(10)}`;
  return [
    `Sidecar scope: one Envoy sidecar's config, ${r.services} services x ${r.endpoints} endpoints (translate + check + encode of a fresh group, median)`,
    `${''.padEnd(34)} ${'bytes'.padStart(12)} ${'clusters'.padStart(9)} ${'endpoints'.padStart(10)} ${'vhosts'.padStart(7)} ${'ms'.padStart(10)}`,
    row('no Sidecar (whole mesh)', r.unscoped),
    row(`Sidecar naming ${DEPS} dependencies`, r.scoped),
    row('lower bound (those, encode only)', r.lowerBound),
    `scoped / lower bound: ${(r.scoped.bytes / r.lowerBound.bytes).toFixed(2)}x bytes, ${(r.scoped.ms / r.lowerBound.ms).toFixed(1)}x time; whole mesh / scoped: ${(r.unscoped.bytes / r.scoped.bytes).toFixed(0)}x bytes, ${(r.unscoped.ms / r.scoped.ms).toFixed(0)}x time`,
  ].join('\n');
}
