// Property tests (layer 3 of the testing notes): random valid rule sets -> compile -> translate for
// a sidecar and a proxyless gRPC client -> every resource passes Envoy's checks; random invalid
// input -> errors with file, line, column and field path, never an exception.
// Generators and mutations: test/helpers/arbitraries.ts.
// FC_SEED=<n> replays a run; FC_RUNS=<factor> multiplies the number of runs (e.g. 10 for a soak).
// The valid-rule property runs 2,000 rule sets per CI run, as the traffic-policy issue asks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatPath } from '../control-plane/config/paths.ts';
import type { ConfigError, LoadResult } from '../control-plane/config/types.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import type { ModelIssue } from '../control-plane/model/types.ts';
import { compile, formatIssue, type MeshState } from '../control-plane/model/compile.ts';
import type { Proxy } from '../control-plane/translate/proxy.ts';
import { resourceName, translate, type Resource, type Resources } from '../control-plane/translate/translate.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import {
  applyMutation,
  brokenReferenceCaseArb,
  documentLines,
  garbageArb,
  mutationCaseArb,
  NETWORK_GATEWAYS,
  toYaml,
  truncatedArb,
  validCaseArb,
  yamlParts,
  type Doc,
  type Mutation,
} from './helpers/arbitraries.ts';

const FILE = 'rules/mesh.yaml';
const SCALE = Number(process.env.FC_RUNS ?? '1') || 1;
// A fixed seed by default, so CI is repeatable; FC_SEED=random explores new ground (soak runs).
const SEED = process.env.FC_SEED === 'random' ? undefined : Number(process.env.FC_SEED ?? '20261122');
// Shrinking re-runs compile and translate; a bounded number of steps keeps a failure report quick.
const MAX_SHRINKS = 60;
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns: Math.round(numRuns * SCALE), ...(SEED !== undefined ? { seed: SEED } : {}) });

function allResources(res: Resources): Resource[] {
  return TYPE_ORDER.flatMap((t) => res[t]);
}

const shortType = (r: Resource) => r['@type'].slice(r['@type'].lastIndexOf('.') + 1);

/** Every reason Envoy (or a gRPC client) would reject this set of resources, one line each. */
function problemsOf(res: Resources, kind: Proxy['kind']): string[] {
  const out: string[] = [];
  for (const r of allResources(res)) {
    for (const v of checkResource(r)) out.push(`${shortType(r)} ${resourceName(r)}: ${v.path || '(root)'}: ${v.message}`);
  }
  if (kind === 'grpc') {
    // grpc-js-xds (xds-resource-type/cluster-resource-type.js) takes a LOGICAL_DNS cluster only
    // with exactly one locality holding exactly one endpoint; anything else is a NACK.
    for (const c of res[CLUSTER]) {
      if (c.type !== 'LOGICAL_DNS') continue;
      const localities = ((c.load_assignment as { endpoints?: Array<{ lb_endpoints?: unknown[] }> } | undefined)?.endpoints ?? []);
      if (localities.length !== 1 || localities[0]!.lb_endpoints?.length !== 1) {
        out.push(`Cluster ${resourceName(c)}: gRPC rejects a LOGICAL_DNS cluster without exactly one endpoint (has ${localities.length} localities)`);
      }
    }
  }
  // gRPC drops a locality without a weight, and needs priorities 0..n-1 with none missing.
  for (const a of res[ENDPOINTS]) {
    const groups = (a.endpoints as Array<{ priority?: number; load_balancing_weight?: number }>) ?? [];
    const prios = [...new Set(groups.map((g) => g.priority ?? 0))].sort((x, y) => x - y);
    if (prios.some((p, i) => p !== i)) out.push(`ClusterLoadAssignment ${resourceName(a)}: priorities not contiguous from 0: ${prios.join(',')}`);
    if (groups.some((g) => !g.load_balancing_weight)) out.push(`ClusterLoadAssignment ${resourceName(a)}: a locality without load_balancing_weight`);
  }
  // Within one response, names are unique per type (Envoy NACKs "duplicate cluster/listener").
  for (const t of TYPE_ORDER) {
    const seen = new Set<string>();
    for (const r of res[t]) {
      const name = resourceName(r);
      if (seen.has(name)) out.push(`${shortType(r)} ${name}: duplicate resource name`);
      seen.add(name);
    }
  }
  // What one resource names, another provides: routes' clusters, listeners' route configs, EDS.
  const clusters = new Set(res[CLUSTER].map(resourceName));
  const routeConfigs = new Set(res[ROUTE_CONFIG].map(resourceName));
  const assignments = new Set(res[ENDPOINTS].map(resourceName));
  const visit = (v: unknown, at: Resource, key?: string): void => {
    if (Array.isArray(v)) v.forEach((x) => visit(x, at));
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (key === 'route' && typeof o.cluster === 'string' && !clusters.has(o.cluster)) out.push(`${shortType(at)} ${resourceName(at)}: route to unknown cluster ${o.cluster}`);
      if (key === 'weighted_clusters') {
        for (const c of (o.clusters as Array<{ name: string }>) ?? []) if (!clusters.has(c.name)) out.push(`${shortType(at)} ${resourceName(at)}: route to unknown cluster ${c.name}`);
      }
      if (key === 'rds' && typeof o.route_config_name === 'string' && !routeConfigs.has(o.route_config_name)) {
        out.push(`${shortType(at)} ${resourceName(at)}: unknown route config ${o.route_config_name}`);
      }
      for (const [k, x] of Object.entries(o)) visit(x, at, k);
    }
  };
  for (const r of [...res[LISTENER], ...res[ROUTE_CONFIG]]) visit(r, r);
  for (const c of res[CLUSTER]) {
    if (c.type === 'EDS') {
      const service = (c.eds_cluster_config as { service_name?: string } | undefined)?.service_name ?? resourceName(c);
      if (!assignments.has(service)) out.push(`Cluster ${resourceName(c)}: no ClusterLoadAssignment ${service}`);
    }
  }
  return out;
}

function fail(what: string, lines: string[], text: string): never {
  throw new Error(`${what}:\n  ${lines.join('\n  ')}\n--- YAML ---\n${text}--- end ---`);
}

const lineCount = (text: string) => text.split(/\r\n|\r|\n/).length;

/** Errors and warnings must point somewhere real and say something. */
function checkIssueShape(issues: ReadonlyArray<ConfigError | ModelIssue>, text: string): void {
  const bad = issues.filter(
    (e) =>
      e.file !== FILE ||
      !Number.isInteger(e.line) || e.line < 1 || e.line > lineCount(text) + 1 ||
      !Number.isInteger(e.col) || e.col < 1 ||
      typeof e.message !== 'string' || e.message.trim() === '' ||
      typeof e.path !== 'string',
  );
  if (bad.length) fail('malformed error reports', bad.map((e) => JSON.stringify(e)), text);
}

/** Parse + compile must not throw, whatever the text. */
function compileText(text: string): { load: LoadResult; state: MeshState } {
  try {
    const load = { ...parseConfigText(FILE, text), networkGateways: NETWORK_GATEWAYS };
    return { load, state: compile(load) };
  } catch (e) {
    fail('parseConfigText/compile threw', [e instanceof Error ? (e.stack ?? e.message) : String(e)], text);
  }
}

/** `path` is `prefix` or a field inside it. */
const under = (path: string, prefix: string) =>
  prefix === '' || path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);

const keyOf = (doc: Doc) => `${doc.kind}/${doc.metadata.namespace ?? 'default'}/${doc.metadata.name}`;

describe('property: valid rule sets', () => {
  it('compile without errors, translate to resources Envoy accepts for sidecar and gRPC clients, deterministically and purely', () => {
    fc.assert(
      fc.property(fc.limitShrink(validCaseArb, MAX_SHRINKS), ({ docs, style, sidecar, grpc }) => {
        const text = toYaml(docs, style);
        const { load, state } = compileText(text);
        if (state.errors.length) fail('compile reported errors for a valid rule set', state.errors.map(formatIssue), text);
        expect(state.rejected).toEqual([]);
        expect(state.accepted.map((o) => o.key).sort()).toEqual(docs.map(keyOf).sort());
        checkIssueShape(state.warnings, text);

        const modelBefore = JSON.stringify(state.model);
        const outputs = new Map<Proxy, string>();
        // A gateway (node type router) too: it alone reads DestinationRule credentialName.
        const router: Proxy = { ...sidecar, id: sidecar.id.replace(/^sidecar~/, 'router~'), router: true };
        for (const proxy of [sidecar, grpc, router]) {
          let res: Resources;
          try {
            res = translate(state.model, proxy);
          } catch (e) {
            fail(`translate threw for the ${proxy.kind} client (proxy ${proxy.id} ${JSON.stringify(proxy.labels)})`, [e instanceof Error ? (e.stack ?? e.message) : String(e)], text);
          }
          const problems = problemsOf(res, proxy.kind);
          if (problems.length) fail(`${proxy.kind} resources rejected (proxy ${proxy.id} ${JSON.stringify(proxy.labels)})`, problems, text);
          outputs.set(proxy, JSON.stringify(res));
        }
        // Deterministic, and no state carried between calls (translate for the other client in between).
        for (const proxy of [sidecar, grpc, router]) expect(JSON.stringify(translate(state.model, proxy))).toBe(outputs.get(proxy));
        // Pure: the model is the same afterwards.
        expect(JSON.stringify(state.model)).toBe(modelBefore);

        // The order in which rules arrive does not matter (file order, watch events).
        const reversed = compile({ ...load, objects: [...load.objects].reverse() });
        expect(reversed.errors.map(formatIssue)).toEqual([]);
        for (const proxy of [sidecar, grpc]) expect(JSON.stringify(translate(reversed.model, proxy))).toBe(outputs.get(proxy));
      }),
      params(2000),
    );
  }, 240_000 * SCALE);
});

describe('property: invalid input', () => {
  /** The field path an error must be reported at (or under), given what was broken. */
  const expectedPath = (m: Mutation): string => formatPath(m.path);

  it('a broken field is reported at its path, with file, line and column, and the rule is not in force', () => {
    fc.assert(
      fc.property(fc.limitShrink(mutationCaseArb, MAX_SHRINKS), ({ docs, mutation }) => {
        const parts = yamlParts(applyMutation(docs, mutation));
        const text = parts.join('---\n');
        const { state } = compileText(text);
        checkIssueShape(state.errors, text);
        checkIssueShape(state.warnings, text);
        // At least one error lies in the broken document and names the broken field (or a field in it).
        const want = expectedPath(mutation);
        const { first, last } = documentLines(parts, mutation.doc);
        const reported = state.errors.filter((e) => under(e.path, want) && e.line >= first && e.line <= last);
        if (reported.length === 0) {
          fail(`no error at ${want} (lines ${first}-${last}) after ${mutation.kind}`, state.errors.length ? state.errors.map(formatIssue) : ['(no errors)'], text);
        }
        const key = keyOf(docs[mutation.doc]!);
        expect(state.accepted.map((o) => o.key), `${key} is still in force`).not.toContain(key);
      }),
      params(200),
    );
  });

  it('a rule naming a missing host, subset or port is rejected at that field, and its last good version stays in force', () => {
    // The model without positions: the last good version of a rule sits at its old place in the file.
    const shape = (m: MeshState['model']) => JSON.stringify({ ...m, warnings: m.warnings.map((w) => `${w.key} ${w.path} ${w.message}`) }, (k, v: unknown) => (k === 'origin' ? undefined : v));
    fc.assert(
      fc.property(fc.limitShrink(brokenReferenceCaseArb, MAX_SHRINKS), ({ world, mutation }) => {
        const before = compileText(toYaml(world.docs)).state;
        expect(before.errors.map(formatIssue), 'the rule set before breaking it is valid').toEqual([]);
        const parts = yamlParts(applyMutation(world.docs, mutation));
        const text = parts.join('---\n');
        const { load, state } = compileText(text);
        expect(load.errors.map(formatIssue), 'the schema accepts the broken rule on its own').toEqual([]);
        checkIssueShape(state.errors, text);
        const want = formatPath(mutation.path);
        const { first, last } = documentLines(parts, mutation.doc);
        if (!state.errors.some((e) => under(e.path, want) && e.line >= first && e.line <= last)) {
          fail(`no error at ${want} (lines ${first}-${last}) for a reference to nothing`, state.errors.length ? state.errors.map(formatIssue) : ['(no errors)'], text);
        }
        const key = keyOf(world.docs[mutation.doc]!);
        expect(state.rejected).toContain(key);
        expect(state.accepted.map((o) => o.key)).not.toContain(key);

        // Given the objects in force before, the previous version of the rule stays in force.
        const kept = compile(load, before.accepted);
        expect(kept.rejected).toContain(key);
        expect(kept.accepted).toContain(before.accepted.find((o) => o.key === key));
        expect(shape(kept.model)).toBe(shape(before.model));
      }),
      params(100),
    );
  });

  it('garbage and truncated text give errors with positions, never an exception', () => {
    fc.assert(
      fc.property(fc.oneof(garbageArb, truncatedArb), (text) => {
        const { state } = compileText(text);
        checkIssueShape(state.errors, text);
        checkIssueShape(state.warnings, text);
      }),
      params(100),
    );
  });
});
