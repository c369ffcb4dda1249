// Incremental builds: the model keeps parts of earlier builds per input object (ModelMemo). For any
// sequence of edits, a build with the memo of the builds before it must give exactly what a build
// from scratch gives (model, errors, warnings, rejected rules, in the same order), and parts the
// edit did not touch must be the very objects of the previous model.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConfigObject } from '../control-plane/config/types.ts';
import { ModelMemo } from '../control-plane/model/build.ts';
import type { Model } from '../control-plane/model/types.ts';
import { compile, type MeshState } from '../control-plane/model/compile.ts';
import { type Files, ParsedFiles } from './helpers/parsed-files.ts';

const SEED = process.env.FC_SEED === 'random' ? undefined : Number(process.env.FC_SEED ?? '20261206');
const host = (s: string) => `${s}.example.com`;

// ---- rule text ---------------------------------------------------------------------------------

interface SeIn { hosts: string[]; dns?: boolean; endpoints: Array<{ n: number; version: string }>; selector?: string }
interface DrIn { host: string; subsets: string[] }
interface Dest { host: string; subset?: string }
interface VsIn { hosts: string[]; routes: Array<Dest & { weight: number }>; mirror?: Dest }
interface WeIn { app: string; version: string; n: number }

const header = (kind: string, name: string, labels = '') =>
  `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata: { name: ${name}, namespace: default${labels ? `, labels: { ${labels} }` : ''} }\n`;
const dest = (d: Dest) => `{ host: ${d.host}${d.subset ? `, subset: ${d.subset}` : ''} }`;

function seYaml(name: string, s: SeIn): string {
  const eps = s.endpoints.map((e) => `  - { address: 10.0.${name.charCodeAt(3)}.${e.n}, labels: { version: ${e.version} } }`);
  return (
    header('ServiceEntry', name) +
    `spec:\n  hosts: [${s.hosts.join(', ')}]\n  location: MESH_INTERNAL\n  resolution: ${s.dns ? 'DNS' : 'STATIC'}\n  ports: [{ number: 80, name: http, protocol: HTTP }]\n` +
    (s.selector ? `  workloadSelector: { labels: { app: ${s.selector} } }\n` : eps.length ? `  endpoints:\n${eps.join('\n')}\n` : '')
  );
}

function drYaml(name: string, d: DrIn): string {
  const subsets = d.subsets.map((s) => `  - { name: ${s}, labels: { version: ${s} } }`);
  return header('DestinationRule', name) + `spec:\n  host: "${d.host}"\n` + (subsets.length ? `  subsets:\n${subsets.join('\n')}\n` : '');
}

function vsYaml(name: string, v: VsIn): string {
  const routes = v.routes.map((r) => `    - { destination: ${dest(r)}, weight: ${r.weight} }`);
  return (
    header('VirtualService', name) +
    `spec:\n  hosts: [${v.hosts.join(', ')}]\n  http:\n  - name: main\n` +
    (v.mirror ? `    mirror: ${dest(v.mirror)}\n` : '') +
    `    route:\n${routes.join('\n')}\n`
  );
}

const weYaml = (name: string, w: WeIn) => header('WorkloadEntry', name, `app: ${w.app}`) + `spec: { address: 10.1.0.${w.n}, labels: { version: ${w.version} } }\n`;

// ---- a mesh of files, as the file source hands it ------------------------------------------------

/** Builds a sequence of file states incrementally, checking each build against one from scratch. */
class Run {
  private mesh = new ParsedFiles();
  private memo = new ModelMemo();
  state: MeshState | undefined;

  step(files: Files): { prev: Model | undefined; next: Model } {
    const load = this.mesh.load(files);
    const previous = this.state?.accepted ?? [];
    const incremental = compile(load, previous, this.memo);
    const fresh = compile(load, previous, new ModelMemo());
    expectSame(incremental, fresh);
    const prev = this.state?.model;
    this.state = incremental;
    return { prev, next: incremental.model };
  }
}

function expectSame(a: MeshState, b: MeshState): void {
  // Byte for byte, key order included, and deep equality (JSON drops undefined properties).
  expect(JSON.stringify(a.model)).toBe(JSON.stringify(b.model));
  expect(a.model).toStrictEqual(b.model);
  expect(a.errors).toStrictEqual(b.errors);
  expect(a.warnings).toStrictEqual(b.warnings);
  expect(a.rejected).toStrictEqual(b.rejected);
  expect(a.accepted.length).toBe(b.accepted.length);
  a.accepted.forEach((o: ConfigObject, i) => expect(o).toBe(b.accepted[i]));
}

/** Every service, cluster and route table of `next` is the previous model's object, except for `changed` hosts. */
function expectKept(prev: Model | undefined, next: Model, changed: string[]): void {
  expect(prev).toBeDefined();
  const check = <T extends { host: string }>(before: readonly T[], after: readonly T[], key: (x: T) => string) => {
    const old = new Map(before.map((x) => [key(x), x]));
    let kept = 0;
    for (const x of after) {
      if (changed.includes(x.host)) continue;
      expect(x, key(x)).toBe(old.get(key(x)));
      kept++;
    }
    expect(kept).toBeGreaterThan(0);
  };
  check(prev!.services, next.services, (s) => s.host);
  check(prev!.clusters, next.clusters, (c) => c.name);
  check(prev!.routeTables, next.routeTables, (t) => `${t.host}:${t.port}`);
}

// ---- the edits named in the issue ----------------------------------------------------------------

const [A, B, C, D] = ['a', 'b', 'c', 'd'].map(host);
const eps = (v1: number, v2: number) => [...Array.from({ length: v1 }, (_, i) => ({ n: i + 1, version: 'v1' })), ...Array.from({ length: v2 }, (_, i) => ({ n: 50 + i, version: 'v2' }))];
const split = (h: string, w1: number, s2 = 'v2'): VsIn => ({ hosts: [h], routes: [{ host: h, subset: 'v1', weight: w1 }, { host: h, subset: s2, weight: 100 - w1 }] });

function baseMesh(): Files {
  const files: Files = {};
  for (const [s, h] of [['a', A], ['b', B], ['c', C]] as const) {
    files[`se-${s}.yaml`] = seYaml(`se-${s}`, { hosts: [h], endpoints: eps(2, 1) });
    files[`dr-${s}.yaml`] = drYaml(`dr-${s}`, { host: h, subsets: ['v1', 'v2'] });
    files[`vs-${s}.yaml`] = vsYaml(`vs-${s}`, split(h, 90));
  }
  return files;
}

describe('incremental model builds', () => {
  it('give what a build from scratch gives, and keep what an edit did not touch', () => {
    const run = new Run();
    let files = baseMesh();
    run.step(files);
    const edit = (name: string, text: string | undefined) => {
      const r = run.step((files = { ...files, [name]: text }));
      expect(run.state!.errors.filter((e) => !('key' in e))).toEqual([]); // no schema errors here
      return r;
    };

    // A VirtualService weight: only that service's route table is new.
    let r = edit('vs-a.yaml', vsYaml('vs-a', split(A, 70)));
    expectKept(r.prev, r.next, [A]);
    expect(r.next.routeTables.find((t) => t.host === A)).not.toBe(r.prev!.routeTables.find((t) => t.host === A));

    // An unknown subset: rejected, the last good version stays; then fixed.
    r = edit('vs-a.yaml', vsYaml('vs-a', split(A, 60, 'v9')));
    expect(run.state!.errors.map((e) => e.message)).toEqual(['subset v9 is not defined by any DestinationRule for a.example.com']);
    expectKept(r.prev, r.next, []);
    r = edit('vs-a.yaml', vsYaml('vs-a', split(A, 50)));
    expect(run.state!.errors).toEqual([]);
    expectKept(r.prev, r.next, [A]);

    // The DestinationRule loses the subset vs-b routes to: vs-b is rejected (the DR is not).
    r = edit('dr-b.yaml', drYaml('dr-b', { host: B, subsets: ['v1'] }));
    expect(run.state!.rejected).toEqual(['VirtualService/default/vs-b']);
    expectKept(r.prev, r.next, [B]);
    edit('dr-b.yaml', drYaml('dr-b', { host: B, subsets: ['v1', 'v2'] }));
    // vs-b was kept at its last good version; a fresh copy of its text resolves again.
    edit('vs-b.yaml', vsYaml('vs-b', split(B, 80)));
    expect(run.state!.rejected).toEqual([]);

    // Endpoints change so that subset v2 of c has none: vs-c stays in force (a warning, not a
    // rejection) and its route table is the very same object; then it has some again.
    const tableOf = (m: Model) => m.routeTables.find((t) => t.host === C);
    r = edit('se-c.yaml', seYaml('se-c', { hosts: [C], endpoints: eps(3, 0) }));
    expect(run.state!.errors).toEqual([]);
    expect(run.state!.rejected).toEqual([]);
    expect(run.state!.warnings.map((e) => e.message)).toContain("subset v2 of c.example.com has no endpoints now: its 10% share of this route's calls fails (Envoy: 503 no healthy upstream; gRPC: UNAVAILABLE)");
    expectKept(r.prev, r.next, [C]);
    expect(tableOf(r.next)).toBe(tableOf(r.prev!));
    r = edit('se-c.yaml', seYaml('se-c', { hosts: [C], endpoints: eps(3, 2) }));
    expect(run.state!.errors).toEqual([]);
    expect(run.state!.warnings).toEqual([]);
    expectKept(r.prev, r.next, [C]);
    expect(tableOf(r.next)).toBe(tableOf(r.prev!));

    // A VirtualService naming a host that comes and goes with a ServiceEntry's hosts.
    edit('vs-d.yaml', vsYaml('vs-d', { hosts: [D], routes: [{ host: D, weight: 100 }], mirror: { host: A, subset: 'v1' } }));
    expect(run.state!.rejected).toEqual(['VirtualService/default/vs-d']);
    r = edit('se-c.yaml', seYaml('se-c', { hosts: [C, D], endpoints: eps(3, 2) }));
    expect(run.state!.rejected).toEqual([]);
    expect(r.next.routeTables.find((t) => t.host === D)?.routes[0]!.origin?.key).toBe('VirtualService/default/vs-d');
    r = edit('se-c.yaml', seYaml('se-c', { hosts: [C], endpoints: eps(3, 2) }));
    expect(run.state!.rejected).toEqual(['VirtualService/default/vs-d']);
    // vs-d's mirror names a: an endpoint change of a re-resolves it (and still agrees with scratch).
    edit('se-a.yaml', seYaml('se-a', { hosts: [A], endpoints: eps(1, 1) }));
    edit('vs-d.yaml', undefined);

    // The same host in two ServiceEntries: the second one is rejected, whichever edit comes first.
    r = edit('se-e.yaml', seYaml('se-e', { hosts: [host('e'), B], endpoints: eps(1, 1) }));
    expect(run.state!.rejected).toEqual(['ServiceEntry/default/se-e']);
    expectKept(r.prev, r.next, []);
    // Without se-b, se-e's declaration of b stands.
    r = edit('se-b.yaml', undefined);
    expect(run.state!.rejected).toEqual([]);
    expect(r.next.services.find((s) => s.host === B)!.origin.key).toBe('ServiceEntry/default/se-e');
    edit('se-b.yaml', seYaml('se-b', { hosts: [B], endpoints: eps(2, 1) }));
    edit('se-e.yaml', seYaml('se-e', { hosts: [host('e')], endpoints: eps(1, 1) }));

    // A ServiceEntry selecting WorkloadEntries: its endpoints follow WorkloadEntry edits.
    edit('se-w.yaml', seYaml('se-w', { hosts: [host('w')], endpoints: [], selector: 'w' }));
    r = edit('we-1.yaml', weYaml('we-1', { app: 'w', version: 'v1', n: 1 }));
    expect(r.next.services.find((s) => s.host === host('w'))!.endpoints.map((e) => e.address)).toEqual(['10.1.0.1']);
    expectKept(r.prev, r.next, [host('w')]);
    r = edit('we-1.yaml', weYaml('we-1', { app: 'w', version: 'v2', n: 2 }));
    expect(r.next.services.find((s) => s.host === host('w'))!.endpoints.map((e) => e.address)).toEqual(['10.1.0.2']);
    r = edit('we-2.yaml', weYaml('we-2', { app: 'other', version: 'v1', n: 3 }));
    expect(r.next.services.find((s) => s.host === host('w'))).toBe(r.prev!.services.find((s) => s.host === host('w')));
    r = edit('we-1.yaml', undefined);
    expect(r.next.services.find((s) => s.host === host('w'))!.endpoints).toEqual([]);

    // A wildcard DestinationRule: in force for every service without a more specific rule, and for
    // a service that appears later, whose routes to its subsets then resolve.
    const F = host('f');
    r = edit('dr-wild.yaml', drYaml('dr-wild', { host: '*.example.com', subsets: ['v1'] }));
    expect(r.next.clusters.filter((c) => c.subset === 'v1' && c.origin?.key === 'DestinationRule/default/dr-wild').map((c) => c.host)).toEqual([host('e'), host('w')]);
    edit('vs-f.yaml', vsYaml('vs-f', { hosts: [F], routes: [{ host: F, subset: 'v1', weight: 100 }] }));
    expect(run.state!.rejected).toEqual(['VirtualService/default/vs-f']);
    r = edit('se-f.yaml', seYaml('se-f', { hosts: [F], endpoints: eps(1, 1) }));
    expect(run.state!.rejected).toEqual([]);
    expect(r.next.clusters.find((c) => c.name === `outbound|80|v1|${F}`)?.origin?.key).toBe('DestinationRule/default/dr-wild');
    // Its own exact rule takes over from the wildcard one.
    r = edit('dr-f.yaml', drYaml('dr-f', { host: F, subsets: ['v1', 'v2'] }));
    expect(r.next.clusters.find((c) => c.name === `outbound|80|v1|${F}`)?.origin?.key).toBe('DestinationRule/default/dr-f');
  });

  it('redo the roots of a delegate VirtualService when only the delegate is edited', () => {
    const run = new Run();
    let files = baseMesh();
    const root = header('VirtualService', 'root') + `spec:\n  hosts: [${A}]\n  http:\n  - match: [{ uri: { prefix: /d } }]\n    delegate: { name: del }\n  - route: [{ destination: { host: ${A}, subset: v1 } }]\n`;
    const del = (h: string, subset: string) => header('VirtualService', 'del') + `spec:\n  http:\n  - route: [{ destination: { host: ${h}, subset: ${subset} } }]\n`;
    files = { ...files, 'vs-a.yaml': root };
    run.step(files);
    const delegated = (m: Model) => m.routeTables.find((t) => t.host === A)!.routes.filter((r) => r.delegation).map((r) => (r.action.kind === 'route' ? r.action.destinations.map((d) => d.cluster) : []));
    expect(delegated(run.state!.model)).toEqual([]);
    const edit = (name: string, text: string | undefined) => run.step((files = { ...files, [name]: text }));
    let r = edit('vs-del.yaml', del(A, 'v1'));
    expect(delegated(r.next)).toEqual([[`outbound|80|v1|${A}`]]);
    r = edit('vs-del.yaml', del(A, 'v2'));
    expect(delegated(r.next)).toEqual([[`outbound|80|v2|${A}`]]);
    expectKept(r.prev, r.next, [A]);
    // Another service for the delegate: the root now depends on that service too.
    r = edit('vs-del.yaml', del(B, 'v1'));
    expect(delegated(r.next)).toEqual([[`outbound|80|v1|${B}`]]);
    r = edit('dr-b.yaml', drYaml('dr-b', { host: B, subsets: ['v2'] }));
    expect(run.state!.rejected).toContain('VirtualService/default/del');
    r = edit('dr-b.yaml', drYaml('dr-b', { host: B, subsets: ['v1', 'v2'] }));
    r = edit('vs-del.yaml', del(C, 'v2'));
    expect(delegated(r.next)).toEqual([[`outbound|80|v2|${C}`]]);
    r = edit('vs-del.yaml', undefined);
    expect(delegated(r.next)).toEqual([]);
    expect(run.state!.warnings.map((w) => w.message)).toContain('VirtualService default/del does not exist (yet): the routes it would bring are absent (as in Istio, the rest of this VirtualService applies)');
  });

  it('agree with builds from scratch over random edit sequences', () => {
    const names = ['a', 'b', 'c'];
    const hostArb = fc.constantFrom(A, B, C, D);
    const subsetArb = fc.constantFrom(undefined, 'v1', 'v2', 'v3');
    const destArb = fc.record({ host: hostArb, subset: subsetArb });
    const seArb = (s: string) =>
      fc.record({
        hosts: fc.subarray([host(s), D, s === 'a' ? B : A], { minLength: 1 }),
        endpoints: fc.array(fc.record({ n: fc.integer({ min: 1, max: 4 }), version: fc.constantFrom('v1', 'v2') }), { maxLength: 3 }),
        dns: fc.boolean(),
        selector: fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
      });
    const drArb = fc.record({ host: fc.constantFrom(A, B, C, D, '*.example.com', '*'), subsets: fc.subarray(['v1', 'v2', 'v3']) });
    const vsArb = fc.record({
      hosts: fc.subarray([A, B, C, D], { minLength: 1 }),
      routes: fc.array(fc.record({ host: hostArb, subset: subsetArb, weight: fc.constantFrom(0, 10, 90, 100) }), { minLength: 1, maxLength: 3 }),
      mirror: fc.option(destArb, { nil: undefined }),
    });
    const weArb = fc.record({ app: fc.constantFrom('x', 'y'), version: fc.constantFrom('v1', 'v2'), n: fc.integer({ min: 1, max: 4 }) });
    const variants: Record<string, fc.Arbitrary<string | undefined>> = {};
    for (const s of names) {
      variants[`se-${s}.yaml`] = fc.option(seArb(s).map((v) => seYaml(`se-${s}`, v)), { nil: undefined });
      variants[`dr-${s}.yaml`] = fc.option(drArb.map((v) => drYaml(`dr-${s}`, v)), { nil: undefined });
      variants[`vs-${s}.yaml`] = fc.option(vsArb.map((v) => vsYaml(`vs-${s}`, v)), { nil: undefined });
    }
    for (const n of ['1', '2']) variants[`we-${n}.yaml`] = fc.option(weArb.map((v) => weYaml(`we-${n}`, v)), { nil: undefined });
    const fileNames = Object.keys(variants);
    const editArb = fc.constantFrom(...fileNames).chain((f) => variants[f]!.map((text) => [f, text] as const));

    fc.assert(
      fc.property(fc.record(variants), fc.array(editArb, { minLength: 1, maxLength: 10 }), (initial, edits) => {
        const run = new Run();
        let files: Files = { ...initial };
        run.step(files);
        for (const [f, text] of edits) run.step((files = { ...files, [f]: text }));
      }),
      { numRuns: 300, ...(SEED !== undefined ? { seed: SEED } : {}) },
    );
  });
});
