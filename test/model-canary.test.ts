// Canary and FaultExperiment rules in the model: resolved against the routes in force, and a rule
// that fails a cross-object check is an error on itself (not in force; its last good version
// stays), never on the VirtualService it names.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDirectory, parseConfigText } from '../control-plane/config/load.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import { reuseUnchanged, sameForProxies } from '../control-plane/model/reuse.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';

const FIXTURE = 'test/golden/in/canary.yaml';
const BASE = fs.readFileSync(FIXTURE, 'utf8');
const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';

/** The fixture's documents, without those whose metadata name is in `drop`, plus `extra`. */
function mesh(drop: string[] = [], extra = ''): string {
  const docs = BASE.split(/^---$/m).filter((d) => !drop.some((n) => d.includes(`name: ${n}, namespace`)));
  return [...docs, extra].filter((d) => d.trim()).join('---\n');
}
const build = (text: string, file = FIXTURE) => compile(parseConfigText(file, text));

const canaryDoc = (name: string, spec: string) => `apiVersion: traffic.meshpilot.io/v1alpha1\nkind: Canary\nmetadata: { name: ${name}, namespace: default }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
const experimentDoc = (name: string, spec: string) => `apiVersion: traffic.meshpilot.io/v1alpha1\nkind: FaultExperiment\nmetadata: { name: ${name}, namespace: default }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;

describe('Canary in the model', () => {
  it('resolves the Canary in force: host, route, clusters per subset, defaults, revision', () => {
    const s = build(BASE);
    expect(s.model.canaries).toHaveLength(1);
    const c = s.model.canaries[0]!;
    expect(c).toMatchObject({
      key: 'Canary/default/reviews',
      namespace: 'default',
      name: 'reviews',
      host: REVIEWS,
      route: 'reviews-canary',
      virtualService: 'VirtualService/default/reviews',
      stable: { subset: 'v1', clusters: [`outbound|9080|v1|${REVIEWS}`] },
      canary: { subset: 'v2', clusters: [`outbound|9080|v2|${REVIEWS}`] },
      steps: [10, 50, 100],
      intervalMs: 30_000,
      analysis: { minRequests: 10, minSuccessRate: 99, maxDropFromStable: 1, maxFailedChecks: 2 },
      finish: 'promote',
      origin: { key: 'Canary/default/reviews', at: `${FIXTURE}:63` },
    });
    expect(c.revision).toMatch(/^[0-9a-f]{16}$/);
  });

  it('rejects the others, each with its file:line and field path, and nothing else', () => {
    const s = build(BASE);
    expect(s.errors.map(formatIssue)).toEqual([
      `${FIXTURE}:79:35 spec.target.route: route default/reviews/reviews-canary already has a Canary (Canary/default/reviews): one Canary per route (Canary default/reviews-again)`,
      `${FIXTURE}:90:35 spec.target.route: route default/reviews/jason-to-v3 sends to subset v3 of ${REVIEWS}: a canary route may send only to subsets v1 and v2 of ${REVIEWS} (Canary default/reviews-jason)`,
      `${FIXTURE}:103:11 spec.canary: subset v4 is not defined for ${REVIEWS} (its DestinationRule has v1, v2, v3) (Canary default/reviews-v4)`,
      `${FIXTURE}:123:46 spec.target.routes[1]: no VirtualService in force has an http route named "ratngs" for ${RATINGS} (named routes: ratings) (FaultExperiment default/ratings-typo)`,
    ]);
    expect(s.rejected).toEqual(['Canary/default/reviews-again', 'Canary/default/reviews-jason', 'Canary/default/reviews-v4', 'FaultExperiment/default/ratings-typo']);
    expect(s.accepted.some((o) => o.key === 'VirtualService/default/reviews')).toBe(true);
  });

  it('needs a known host, a named route of a VirtualService in force, and the route in one VirtualService only', () => {
    const only = ['reviews-again', 'reviews-jason', 'reviews-v4', 'ratings-typo'];
    const errs = (extra: string, drop: string[] = []) => build(mesh([...only, ...drop], extra)).errors.map((e) => `${e.path}: ${e.message}`);
    expect(errs(canaryDoc('x', 'target: { host: nope, route: r }\nstable: v1\ncanary: v2\nsteps: [100]\ninterval: 1m'))).toEqual([
      'spec.target.host: host nope.default.svc.cluster.local is not a known service (declare it with a ServiceEntry) nor a host of a VirtualService bound to a gateway with an http route named "r"',
    ]);
    expect(errs(canaryDoc('x', 'target: { host: ratings, route: r }\nstable: v1\ncanary: v2\nsteps: [100]\ninterval: 1m'))).toEqual([
      `spec.target.route: no VirtualService in force has an http route named "r" for ${RATINGS} (named routes: ratings)`,
    ]);
    // Without the VirtualService, the route is not in force: the Canary is the one in error.
    const noVs = mesh(only).split(/^---$/m).filter((d) => !d.includes('kind: VirtualService\nmetadata: { name: reviews,')).join('---');
    expect(build(noVs).errors.map((e) => `${'key' in e ? e.key : ''} ${e.path}: ${e.message}`)).toEqual([
      `Canary/default/reviews spec.target.route: no VirtualService in force has an http route named "reviews-canary" for ${REVIEWS} (it has no named http routes)`,
    ]);
    // Two VirtualServices with a route of that name for the host.
    const twin = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: reviews-twin, namespace: default }\nspec:\n  hosts: [reviews]\n  http:\n  - name: reviews-canary\n    match: [{ headers: { x-twin: { exact: "1" } } }]\n    route: [{ destination: { host: reviews, subset: v2 } }]\n`;
    expect(errs(twin)).toEqual([
      `spec.target.route: several VirtualServices have an http route named "reviews-canary" for ${REVIEWS} (VirtualService/default/reviews-twin, VirtualService/default/reviews): name the route uniquely`,
    ]);
  });

  it('an unnamed http route cannot be named by its index', () => {
    const text = mesh(['reviews-again', 'reviews-jason', 'reviews-v4', 'ratings-typo', 'ratings-delay'], experimentDoc('e', 'target: { host: ratings, routes: ["0"] }\nfault: { abort: { httpStatus: 503, percentage: { value: 1 } } }\nexpiresAt: "2030-01-01T00:00:00Z"')).replace('  - name: ratings\n    route: [{ destination: { host: ratings } }]', '  - route: [{ destination: { host: ratings } }]');
    const s = build(text);
    expect(s.errors.map((e) => e.message)).toEqual([`no VirtualService in force has an http route named "0" for ${RATINGS} (it has no named http routes)`]);
  });

  it('a new revision only when host, route, subsets or steps change', () => {
    const rev = (text: string) => build(text).model.canaries.find((c) => c.key === 'Canary/default/reviews')!.revision;
    const base = rev(BASE);
    expect(rev(BASE.replace('analysis: { minRequests: 10,', 'analysis: { minRequests: 50,').replace('interval: 30s', 'interval: 45s'))).toBe(base);
    expect(rev(BASE.replace('steps: [10, 50, 100]', 'steps: [20, 50, 100]'))).not.toBe(base);
  });

  it('a bad edit leaves the last good version in force', () => {
    const first = build(BASE);
    const bad = BASE.replace('  stable: v1\n  canary: v2\n  steps: [10, 50, 100]', '  stable: v1\n  canary: v9\n  steps: [10, 50, 100]');
    const second = compile(parseConfigText(FIXTURE, bad), first.accepted);
    expect(second.errors.some((e) => 'key' in e && e.key === 'Canary/default/reviews' && e.path === 'spec.canary')).toBe(true);
    expect(second.model.canaries.map((c) => [c.key, c.canary.subset])).toEqual([['Canary/default/reviews', 'v2']]);
  });

  it('does not change what proxies get (the runtime overlay does)', () => {
    const withRules = build(BASE).model;
    expect(withRules.canaries.length + withRules.experiments.length).toBe(2);
    const a = build(BASE.split(/^---$/m).filter((d) => !/kind: (Canary|FaultExperiment)/.test(d)).join('---')).model;
    expect(sameForProxies(reuseUnchanged(withRules, a), a)).toBe(true);
    const grpc = proxyFromNode({ id: 'sidecar~10.0.0.10~x.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', GENERATOR: 'grpc' } });
    expect(JSON.stringify(translate(withRules, grpc))).toBe(JSON.stringify(translate(a, grpc)));
  });
});

describe('FaultExperiment in the model', () => {
  it('resolves the experiment in force: routes, model route names, fault, expiry, guard defaults, clusters', () => {
    const e = build(BASE).model.experiments;
    expect(e).toEqual([
      {
        key: 'FaultExperiment/default/ratings-delay',
        namespace: 'default',
        name: 'ratings-delay',
        host: RATINGS,
        routes: ['ratings'],
        routeNames: ['default/ratings/ratings'],
        fault: { delay: { fixedDelayMs: 2000, percent: 50 } },
        expiresAtMs: Date.parse('2030-12-31T23:00:00Z'),
        guard: { minSuccessRate: 95, minRequests: 20, windowMs: 30_000 },
        clusters: [`outbound|9080||${RATINGS}`],
        revision: expect.stringMatching(/^[0-9a-f]{16}$/),
        origin: { key: 'FaultExperiment/default/ratings-delay', at: `${FIXTURE}:108` },
      },
    ]);
  });

  it('without routes: every route of the host, even one no VirtualService names', () => {
    const s = build(mesh(['reviews-again', 'reviews-jason', 'reviews-v4', 'ratings-typo', 'ratings-delay'], experimentDoc('all', 'target: { host: reviews }\nfault: { abort: { grpcStatus: UNAVAILABLE, percentage: { value: 5 } } }\nexpiresAt: "2030-01-01T00:00:00+01:00"')));
    expect(s.errors).toEqual([]);
    const e = s.model.experiments[0]!;
    expect([e.routes, e.routeNames, e.expiresAtMs, e.guard, e.clusters]).toEqual([[], [], Date.parse('2029-12-31T23:00:00Z'), undefined, [`outbound|9080||${REVIEWS}`, `outbound|9080|v1|${REVIEWS}`, `outbound|9080|v2|${REVIEWS}`, `outbound|9080|v3|${REVIEWS}`]]);
  });

  it('needs a known host with an HTTP port', () => {
    const tcp = `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: db, namespace: default }\nspec:\n  hosts: [db.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{ number: 5432, name: tcp, protocol: TCP }]\n  endpoints: [{ address: 10.0.9.1 }]\n`;
    const s = build(mesh(['reviews-again', 'reviews-jason', 'reviews-v4', 'ratings-typo', 'ratings-delay'], `${tcp}---\n${experimentDoc('db', 'target: { host: db }\nfault: { abort: { httpStatus: 503, percentage: { value: 5 } } }\nexpiresAt: "2030-01-01T00:00:00Z"')}---\n${experimentDoc('nope', 'target: { host: nope.example.com }\nfault: { abort: { httpStatus: 503, percentage: { value: 5 } } }\nexpiresAt: "2030-01-01T00:00:00Z"')}`));
    expect(s.errors.map((e) => `${'key' in e ? e.key : ''} ${e.path}: ${e.message}`)).toEqual([
      'FaultExperiment/default/db spec.target.host: db.default.svc.cluster.local has no HTTP, HTTP2 or GRPC port: faults apply to HTTP routes',
      'FaultExperiment/default/nope spec.target.host: host nope.example.com is not a known service (declare it with a ServiceEntry) nor a host of a VirtualService bound to a gateway',
    ]);
    expect(s.model.experiments).toEqual([]);
  });
});

describe('examples', () => {
  it('examples/canary and the fault experiment of examples/canary-fault are in force, without errors or warnings', () => {
    const mesh = loadDirectory('examples/canary');
    const fault = loadDirectory('examples/canary-fault');
    const s = compile({ objects: [...mesh.objects, ...fault.objects], errors: [...mesh.errors, ...fault.errors] });
    expect([s.errors, s.warnings]).toEqual([[], []]);
    expect(s.model.canaries.map((c) => [c.key, c.route, c.stable.subset, c.canary.subset, c.steps])).toEqual([['Canary/default/reviews', 'reviews-canary', 'v1', 'v2', [10, 25, 50, 100]]]);
    expect(s.model.experiments.map((e) => [e.key, e.host])).toEqual([['FaultExperiment/default/ratings-slow', RATINGS]]);
  });

  it('examples/bookinfo has no Canary (npm start serves it as it was)', () => {
    expect(compile(loadDirectory('examples/bookinfo')).model.canaries).toEqual([]);
  });
});
