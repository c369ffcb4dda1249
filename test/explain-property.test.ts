// Property: on random valid rule sets (the generators of test/property.test.ts), for a random
// sidecar and gRPC client and a handful of requests to each HTTP route table, explain
// - never throws, and every rule it cites is a rule in force, at a line of the file;
// - forwards with destination shares that add up to 1;
// - picks the same route as an independent oracle that reads the model's route tables with
//   Istio's match semantics per data plane (source conditions, gRPC's dropped matches, Envoy's vs
//   gRPC's treatment of a missing header under withoutHeaders, pseudo-headers), with the same
//   destinations and weight shares as that model route. The oracle reads
//   the model, explain reads the generated Envoy config: agreement checks the translator and the
//   evaluator against each other.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { explain } from '../control-plane/explain/explain.ts';
import { parseRequest, pathOnly, queryParams, routingHeaders, type HttpRequest } from '../control-plane/explain/request.ts';
import { labelsMatch } from '../control-plane/model/services.ts';
import type { HttpRoute, RouteMatch, RouteTable, StringMatch } from '../control-plane/model/types.ts';
import { compile } from '../control-plane/model/compile.ts';
import type { Proxy } from '../control-plane/translate/proxy.ts';
import { matchesValue } from '../control-plane/translate/string-match.ts';
import { toYaml, validCaseArb } from './helpers/arbitraries.ts';

const FILE = 'rules/mesh.yaml';
const SEED = process.env.FC_SEED === 'random' ? undefined : Number(process.env.FC_SEED ?? '20261122');
const RUNS = Math.round(150 * (Number(process.env.FC_RUNS ?? '1') || 1));

const PATHS = ['/', '/admin/users', '/api/v1/x?mode=test&q=1', '/reviews.Reviews/List', '/users/12', '/API/V2/y'];
const HEADER_SETS: Array<Record<string, string>> = [
  {},
  { 'end-user': 'jason', 'x-debug': '1' },
  { cookie: 'theme=dark;user=jason', 'x-user': 'bob', 'x-canary': 'true', 'user-agent': 'curl/8' },
];

// ---- the oracle: Istio semantics on the model ------------------------------------------------

function sm(m: StringMatch, value: string, ignoreCase = false): boolean {
  if (m.kind === 'regex') return matchesValue({ kind: 'regex', value: ignoreCase ? `(?i)${m.value}` : m.value }, value);
  const [v, want] = ignoreCase ? [value.toLowerCase(), m.value.toLowerCase()] : [value, m.value];
  return m.kind === 'exact' ? v === want : v.startsWith(want);
}

function matchHolds(m: RouteMatch, req: HttpRequest, grpc: boolean): boolean {
  if (m.uri) {
    const target = m.uri.kind === 'prefix' ? req.path : pathOnly(req.path);
    if (!sm(m.uri, target, m.ignoreUriCase)) return false;
  }
  if (m.method && !grpc && !sm(m.method, req.method)) return false;
  const headers = routingHeaders(req);
  for (const h of m.headers) {
    const value = headers[h.name];
    const raw = value !== undefined && (h.match ? sm(h.match, value) : true);
    if (!h.invert) {
      if (!raw) return false;
    } else if (value === undefined) {
      // Envoy: a missing header matches an inverted matcher only for presence; gRPC: always.
      if (!grpc && h.match) return false;
    } else if (raw) return false;
  }
  const query = queryParams(req.path);
  for (const q of m.queryParams) {
    const v = query.get(q.name);
    if (v === undefined || (q.match && !sm(q.match, v))) return false;
  }
  return true;
}

function sourceOk(m: RouteMatch, proxy: Proxy): boolean {
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== proxy.namespace) return false;
  return !m.sourceLabels || labelsMatch(m.sourceLabels, proxy.labels);
}

/** The first route of the table that takes the request, as Istio's semantics say. */
function oracle(table: RouteTable, proxy: Proxy, req: HttpRequest): HttpRoute | undefined {
  const grpc = proxy.kind === 'grpc';
  for (const r of table.routes) {
    if (grpc && r.action.kind !== 'route') continue;
    if (r.matches.length === 0) return r;
    for (const m of r.matches) {
      if (!sourceOk(m, proxy)) continue;
      // gRPC clients get no match that could never hold for them (query parameters, a method other than POST).
      if (grpc && (m.queryParams.length || (m.method && !matchesValue(m.method, 'POST')))) continue;
      if (matchHolds(m, req, grpc)) return r;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

describe('property: explain on random rule sets', () => {
  it('never throws, cites real rules, and picks the route an independent reading of the model picks', () => {
    let compared = 0;
    let forwarded = 0;
    fc.assert(
      fc.property(fc.limitShrink(validCaseArb, 30), fc.nat(), ({ docs, style, sidecar, grpc }, pick) => {
        const text = toYaml(docs, style);
        const state = compile(parseConfigText(FILE, text));
        expect(state.errors).toEqual([]);
        const lines = text.split('\n').length;
        const keys = new Set(state.accepted.map((o) => o.key));
        const tables = state.model.routeTables;
        if (!tables.length) return;
        for (const proxy of [sidecar, grpc]) {
          for (let t = 0; t < Math.min(3, tables.length); t++) {
            const table = tables[(pick + t) % tables.length]!;
            const path = PATHS[(pick + t) % PATHS.length]!;
            const headers = HEADER_SETS[(pick >> 3) % HEADER_SETS.length]!;
            const grpcPath = pathOnly(path);
            const request = proxy.kind === 'grpc' ? `xds:///${table.host}:${table.port}${grpcPath}` : `${pick % 2 ? 'POST' : 'GET'} http://${table.host}:${table.port}${path}`;
            const headerLines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
            const e = explain(state, { from: proxy.id, kind: proxy.kind, labels: proxy.labels, ...(proxy.ip ? { ip: proxy.ip } : {}), request, headers: headerLines });
            const what = `${proxy.kind} ${proxy.id} ${JSON.stringify(proxy.labels)}: ${request} ${JSON.stringify(headers)}\n${text}`;
            // Every cited rule is in force, at a line of the file.
            const refs = [...e.routes.map((r) => r.rule), ...e.destinations.flatMap((d) => d.rules), ...e.faults.map((f) => f.rule), ...e.rateLimits.map((r) => r.rule)];
            for (const r of refs) {
              if (!r) continue;
              expect(keys.has(r.key), what).toBe(true);
              const [file, line] = [r.at.slice(0, r.at.lastIndexOf(':')), Number(r.at.slice(r.at.lastIndexOf(':') + 1))];
              expect(file, what).toBe(FILE);
              expect(line >= 1 && line <= lines, what).toBe(true);
            }
            if (e.outcome.kind === 'forward') {
              forwarded++;
              expect(Math.abs(e.destinations.reduce((s, d) => s + d.share, 0) - 1), what).toBeLessThan(1e-9);
            }
            // The route: the same one the oracle picks from the model.
            const want = oracle(table, proxy, parseRequest(request, headerLines, proxy.kind));
            expect(e.route?.name, what).toBe(want?.name);
            // And the same destinations and shares as the model's route.
            if (want && want.action.kind === 'route' && e.outcome.kind === 'forward') {
              const total = want.action.destinations.reduce((sum, d) => sum + d.weight, 0);
              const model = want.action.destinations.map((d) => [d.cluster, Math.round((d.weight / total) * 1e6)]).sort();
              const got = e.destinations.map((d) => [d.cluster, Math.round(d.share * 1e6)]).sort();
              expect(got, what).toEqual(model);
            }
            compared++;
          }
        }
      }),
      { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
    );
    // The property must actually compare routes and see forwarded requests, not pass vacuously.
    expect(compared).toBeGreaterThan(RUNS);
    expect(forwarded).toBeGreaterThan(RUNS / 2);
  });
});
