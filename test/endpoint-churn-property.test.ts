// Property: endpoints never change what a rule does. A fixed rule set (three services declared by
// ServiceEntries with subset-labelled endpoints, DestinationRules with subsets, VirtualServices
// with weighted splits, header matches and mirrors to subsets) goes through a random sequence of
// endpoint additions and removals, including every endpoint of a subset and of a whole service.
// After each step the rules are compiled as the server does (the previous accepted objects, one
// shared ModelMemo, reuseUnchanged; the rule file is parsed once, so its objects keep their
// identities, as the file source keeps them) and translated for an Envoy sidecar and a proxyless
// gRPC client. Then:
// - the accepted rules, the errors and the rejected keys are those of the first build;
// - Clusters, Listeners and RouteConfigurations are byte-identical (JSON) to the first build's;
// - only ClusterLoadAssignments change, one per cluster as before, each holding exactly the
//   endpoints the step says exist for its service port and subset.
// FC_SEED=<n> replays a run; FC_RUNS=<factor> multiplies the number of runs.
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { assemble, contributionOf, parseConfigFile } from '../control-plane/config/load.ts';
import type { ConfigObject, LoadResult } from '../control-plane/config/types.ts';
import { ModelMemo } from '../control-plane/model/build.ts';
import { reuseUnchanged } from '../control-plane/model/reuse.ts';
import type { Model } from '../control-plane/model/types.ts';
import { compile, formatIssue, type MeshState } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { resourceName, translate, type Resources } from '../control-plane/translate/translate.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, type ResourceType } from '../control-plane/translate/type-urls.ts';

const SCALE = Number(process.env.FC_RUNS ?? '1') || 1;
const SEED = process.env.FC_SEED === 'random' ? undefined : Number(process.env.FC_SEED ?? '20261206');

const NS = 'default';
const host = (s: string) => `${s}.${NS}.svc.cluster.local`;

interface Svc {
  name: string;
  ports: Array<{ number: number; name: string; protocol: string }>;
  subsets: Record<string, Record<string, string>>;
}

const SERVICES: Svc[] = [
  {
    name: 'reviews',
    ports: [{ number: 9080, name: 'grpc', protocol: 'GRPC' }],
    subsets: { v1: { version: 'v1' }, v2: { version: 'v2' }, v3: { version: 'v3' }, canary: { version: 'v2', track: 'canary' } },
  },
  { name: 'ratings', ports: [{ number: 9080, name: 'grpc', protocol: 'GRPC' }], subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } } },
  {
    name: 'details',
    ports: [{ number: 9080, name: 'grpc', protocol: 'GRPC' }, { number: 8080, name: 'http', protocol: 'HTTP' }],
    subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
  },
];

/** Every endpoint that may exist; a step decides which do. */
interface Slot {
  id: number;
  service: string;
  address: string;
  labels: Record<string, string>;
  locality: string;
}

const SLOTS: Slot[] = (() => {
  const out: Slot[] = [];
  const add = (service: string, labels: Record<string, string>, locality: string) => {
    const n = out.filter((s) => s.service === service).length + 1;
    const svcIndex = SERVICES.findIndex((s) => s.name === service) + 1;
    out.push({ id: out.length, service, address: `10.${svcIndex}.0.${n}`, labels: { app: service, ...labels }, locality });
  };
  add('reviews', { version: 'v1' }, 'us-east/zone-a');
  add('reviews', { version: 'v1' }, 'us-east/zone-b');
  add('reviews', { version: 'v2' }, 'us-east/zone-a');
  add('reviews', { version: 'v2', track: 'canary' }, 'us-east/zone-b');
  add('reviews', { version: 'v3' }, 'us-west/zone-c');
  add('ratings', { version: 'v1' }, 'us-east/zone-a');
  add('ratings', { version: 'v1' }, 'us-west/zone-c');
  add('ratings', { version: 'v2' }, 'us-east/zone-b');
  add('details', { version: 'v1' }, 'us-east/zone-a');
  add('details', { version: 'v1' }, 'us-east/zone-b');
  add('details', { version: 'v2' }, 'us-east/zone-a');
  return out;
})();

const selects = (subset: Record<string, string>, labels: Record<string, string>) => Object.entries(subset).every(([k, v]) => labels[k] === v);

function servicesYaml(present: ReadonlySet<number>): string {
  return SERVICES.map((s) =>
    stringify(
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: s.name, namespace: NS },
        spec: {
          hosts: [host(s.name)],
          location: 'MESH_INTERNAL',
          resolution: 'STATIC',
          ports: s.ports,
          endpoints: SLOTS.filter((e) => e.service === s.name && present.has(e.id)).map((e) => ({ address: e.address, labels: e.labels, locality: e.locality })),
        },
      },
      { lineWidth: 0 },
    ),
  ).join('---\n');
}

const dest = (service: string, subset?: string, port?: number) => ({ host: host(service), ...(subset ? { subset } : {}), ...(port ? { port: { number: port } } : {}) });

const RULES = [
  ...SERVICES.map((s) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: s.name, namespace: NS },
    spec: {
      host: host(s.name),
      // Outlier detection turns on locality priorities (per-caller EDS) for reviews.
      ...(s.name === 'reviews' ? { trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3, interval: '5s', baseEjectionTime: '30s' } } } : {}),
      subsets: Object.entries(s.subsets).map(([name, labels]) => ({ name, labels })),
    },
  })),
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: NS },
    spec: {
      hosts: [host('reviews')],
      http: [
        { name: 'testers', match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: dest('reviews', 'v2') }] },
        { name: 'canary', match: [{ headers: { 'x-canary': { exact: '1' } } }], route: [{ destination: dest('reviews', 'canary') }], mirror: dest('ratings', 'v2'), mirrorPercentage: { value: 50 } },
        {
          name: 'split',
          route: [
            { destination: dest('reviews', 'v1'), weight: 70 },
            { destination: dest('reviews', 'v2'), weight: 30 },
            { destination: dest('reviews', 'v3'), weight: 0 },
          ],
          mirrors: [{ destination: dest('reviews', 'v3'), percentage: { value: 10 } }],
        },
      ],
    },
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'ratings', namespace: NS },
    spec: {
      hosts: [host('ratings')],
      http: [
        { match: [{ headers: { 'end-user': { prefix: 'test-' } } }], route: [{ destination: dest('ratings', 'v2') }] },
        { route: [{ destination: dest('ratings', 'v1'), weight: 90 }, { destination: dest('ratings', 'v2'), weight: 10 }], mirror: dest('reviews', 'v1', 9080) },
      ],
    },
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'details', namespace: NS },
    spec: {
      hosts: [host('details')],
      http: [
        { match: [{ port: 8080 }], route: [{ destination: dest('details', 'v2', 8080) }], mirror: dest('reviews', 'v3', 9080) },
        { match: [{ port: 9080, headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: dest('details', 'v2', 9080) }] },
        { route: [{ destination: dest('details', 'v1', 9080), weight: 50 }, { destination: dest('details', 'v2', 9080), weight: 50 }] },
      ],
    },
  },
];
const RULES_YAML = RULES.map((r) => stringify(r, { lineWidth: 0 })).join('---\n');

// Parsed once: the rules keep their object identities from build to build, as with the file source.
const RULES_FILE = contributionOf(parseConfigFile('mesh/rules.yaml', RULES_YAML));

function load(present: ReadonlySet<number>): LoadResult {
  return assemble([contributionOf(parseConfigFile('mesh/services.yaml', servicesYaml(present))), RULES_FILE]);
}

const PROXIES = {
  sidecar: proxyFromNode({
    id: 'sidecar~10.0.0.9~productpage-v1-1.default~default.svc.cluster.local',
    metadata: { NAMESPACE: NS, LABELS: { app: 'productpage', version: 'v1' } },
    locality: { region: 'us-east', zone: 'zone-a' },
  }),
  grpc: proxyFromNode({
    id: 'sidecar~10.0.0.10~productpage-v1-2.default~default.svc.cluster.local',
    metadata: { NAMESPACE: NS, GENERATOR: 'grpc', LABELS: { app: 'productpage', version: 'v1' } },
    locality: { region: 'us-east', zone: 'zone-b' },
  }),
};

type Op =
  | { op: 'add'; slot: number }
  | { op: 'remove'; slot: number }
  | { op: 'emptySubset'; service: string; subset: string }
  | { op: 'emptyService'; service: string }
  | { op: 'fillService'; service: string };

const subsetChoices = SERVICES.flatMap((s) => Object.keys(s.subsets).map((subset) => ({ service: s.name, subset })));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: SLOTS.length - 1 }).map((slot): Op => ({ op: 'add', slot })) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: SLOTS.length - 1 }).map((slot): Op => ({ op: 'remove', slot })) },
  { weight: 2, arbitrary: fc.constantFrom(...subsetChoices).map((c): Op => ({ op: 'emptySubset', ...c })) },
  { weight: 1, arbitrary: fc.constantFrom(...SERVICES.map((s) => s.name)).map((service): Op => ({ op: 'emptyService', service })) },
  { weight: 1, arbitrary: fc.constantFrom(...SERVICES.map((s) => s.name)).map((service): Op => ({ op: 'fillService', service })) },
);

function applyOp(present: Set<number>, o: Op): void {
  for (const s of SLOTS) {
    if (o.op === 'add' && s.id === o.slot) present.add(s.id);
    if (o.op === 'remove' && s.id === o.slot) present.delete(s.id);
    if (o.op === 'emptySubset' && s.service === o.service && selects(SERVICES.find((x) => x.name === o.service)!.subsets[o.subset]!, s.labels)) present.delete(s.id);
    if (o.op === 'emptyService' && s.service === o.service) present.delete(s.id);
    if (o.op === 'fillService' && s.service === o.service) present.add(s.id);
  }
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` -> the endpoints it must hold now, as address:port. */
function expectedEndpoints(cluster: string, present: ReadonlySet<number>): string[] {
  const [dir, port, subset, h] = cluster.split('|');
  const svc = SERVICES.find((s) => host(s.name) === h);
  if (dir !== 'outbound' || !svc || !svc.ports.some((p) => String(p.number) === port)) throw new Error(`unexpected cluster ${cluster}`);
  const labels = subset ? svc.subsets[subset!] : {};
  if (!labels) throw new Error(`unexpected subset in ${cluster}`);
  return SLOTS.filter((s) => s.service === svc.name && present.has(s.id) && selects(labels, s.labels)).map((s) => `${s.address}:${port}`).sort();
}

/** What a ClusterLoadAssignment holds, as address:port, across localities and priorities. */
function heldEndpoints(cla: Record<string, unknown>): string[] {
  const groups = (cla.endpoints as Array<{ lb_endpoints?: Array<{ endpoint: { address: { socket_address: { address: string; port_value: number } } } }> }> | undefined) ?? [];
  return groups.flatMap((g) => (g.lb_endpoints ?? []).map((e) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`)).sort();
}

const json = (r: unknown) => JSON.stringify(r);
const byName = (res: Resources, type: ResourceType) => new Map(res[type].map((r) => [resourceName(r), json(r)]));

interface Built {
  state: MeshState;
  model: Model;
}

/** One build as the server makes it: previous accepted objects, the shared memo, reuseUnchanged. */
function build(present: ReadonlySet<number>, prev: Built | undefined, memo: ModelMemo): Built {
  const state = compile(load(present), prev?.state.accepted ?? [], memo);
  return { state, model: reuseUnchanged(state.model, prev?.model) };
}

const ruleObjects = (accepted: readonly ConfigObject[]) => accepted.filter((o) => o.kind !== 'ServiceEntry');

describe('endpoint churn never changes rules, clusters, listeners or routes', () => {
  const everything = new Set(SLOTS.map((s) => s.id));

  it('the fixed rule set is valid and routes to every subset', () => {
    const { state, model } = build(everything, undefined, new ModelMemo());
    expect(state.errors.map(formatIssue)).toEqual([]);
    // Only notes on what gRPC leaves out (mirrors, consecutive-error ejection); no empty destination.
    expect(state.warnings.filter((w) => !w.message.startsWith('gRPC ')).map(formatIssue)).toEqual([]);
    expect(state.rejected).toEqual([]);
    expect(ruleObjects(state.accepted).map((o) => o.key).sort()).toEqual([
      'DestinationRule/default/details',
      'DestinationRule/default/ratings',
      'DestinationRule/default/reviews',
      'VirtualService/default/details',
      'VirtualService/default/ratings',
      'VirtualService/default/reviews',
    ]);
    const grpc = translate(model, PROXIES.grpc);
    expect([...byName(grpc, ENDPOINTS).keys()].sort()).toEqual(expect.arrayContaining(['outbound|9080|canary|reviews.default.svc.cluster.local', 'outbound|8080|v2|details.default.svc.cluster.local']));
  });

  it('after each random step only ClusterLoadAssignments differ, and they hold exactly the endpoints that exist', () => {
    const steps = fc.array(opArb, { minLength: 1, maxLength: 12 });
    // Always tried: a subset emptied and refilled, a whole service emptied and refilled, all gone.
    const examples: Array<[Op[]]> = [
      [[{ op: 'emptySubset', service: 'reviews', subset: 'v2' }, { op: 'add', slot: 2 }, { op: 'add', slot: 3 }]],
      [[{ op: 'emptyService', service: 'reviews' }, { op: 'emptyService', service: 'ratings' }, { op: 'emptyService', service: 'details' }, { op: 'fillService', service: 'ratings' }, { op: 'fillService', service: 'reviews' }, { op: 'fillService', service: 'details' }]],
    ];
    fc.assert(
      fc.property(steps, (ops) => {
        const memo = new ModelMemo();
        const present = new Set(everything);
        let built = build(present, undefined, memo);
        const first = built;
        const initial = Object.fromEntries(Object.entries(PROXIES).map(([k, p]) => [k, translate(built.model, p)])) as Record<keyof typeof PROXIES, Resources>;
        const trail: string[] = [];
        for (const o of ops) {
          applyOp(present, o);
          trail.push(JSON.stringify(o));
          const where = `after ${trail.join(' ')} (endpoints ${[...present].sort((a, b) => a - b).join(',')})`;
          built = build(present, built, memo);
          const { state } = built;
          expect(state.errors.map(formatIssue), where).toEqual(first.state.errors.map(formatIssue));
          expect(state.rejected, where).toEqual(first.state.rejected);
          expect(state.accepted.map((a) => a.key), where).toEqual(first.state.accepted.map((a) => a.key));
          // The very rule objects stay in force (not a fallback to some other version).
          expect(ruleObjects(state.accepted).every((a, i) => a === ruleObjects(first.state.accepted)[i]), where).toBe(true);
          // Warnings: the first build's, plus one kind more: a destination without endpoints. Every
          // subset is the target of some route or mirror, so the empty ones are exactly those named.
          const empty = (w: { message: string }) => w.message.includes(' has no endpoints now: ');
          expect(state.warnings.filter((w) => !empty(w)).map(formatIssue), where).toEqual(first.state.warnings.map(formatIssue));
          const named = new Set(state.warnings.filter(empty).map((w) => /^subset (\S+) of (\S+) has no endpoints now/.exec(w.message)?.slice(1).join(' ') ?? w.message));
          const emptySubsets = new Set(subsetChoices.filter((c) => expectedEndpoints(`outbound|9080|${c.subset}|${host(c.service)}`, present).length === 0).map((c) => `${c.subset} ${host(c.service)}`));
          expect([...named].sort(), where).toEqual([...emptySubsets].sort());
          for (const [kind, proxy] of Object.entries(PROXIES) as Array<[keyof typeof PROXIES, (typeof PROXIES)[keyof typeof PROXIES]]>) {
            const res = translate(built.model, proxy);
            for (const type of [CLUSTER, LISTENER, ROUTE_CONFIG] as const satisfies readonly ResourceType[]) {
              expect(res[type].map(json), `${kind} ${type} ${where}`).toEqual(initial[kind][type].map(json));
            }
            const names = res[ENDPOINTS].map(resourceName);
            expect(names, `${kind} ClusterLoadAssignment names ${where}`).toEqual(initial[kind][ENDPOINTS].map(resourceName));
            for (const cla of res[ENDPOINTS]) {
              const name = resourceName(cla);
              expect(heldEndpoints(cla), `${kind} ${name} ${where}`).toEqual(expectedEndpoints(name, present));
            }
          }
        }
      }),
      { numRuns: Math.round(40 * SCALE), examples, ...(SEED !== undefined ? { seed: SEED } : {}) },
    );
  });
});
