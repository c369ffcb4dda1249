// Route tests: YAML files of concrete requests and what should happen to them, checked with explain
// against a config directory, so a team can test its rules in CI before applying them.
//
//   tests:
//   - name: jason sees v2
//     from: default/productpage            # as explain --from (node id or ns/name); optional
//     kind: grpc                           # caller kind, default envoy; also labels, namespace, ip, locality, calleeKind
//     request: GET http://reviews:9080/reviews/1   # or tcp://db:5432, tls://api.example.com:443 (route: <ns>/<vs>/tcp/<i>)
//     headers: { end-user: jason }
//     expect:
//       route: jason-to-v2                 # http route name, or the full ns/vs/name
//       destination: { host: reviews, subset: v2 }   # or a list, with weight: <percent>
//       fault: none                        # or { abort: { httpStatus: 503, percent: 50 }, delay: { fixedDelay: 7s } }
//       decision: allow                    # the callee's authorization: allow | deny | unknown | mixed
//       rateLimited: false                 # whether an enforced local rate limit counts this request
//       status: 404                        # when the proxy answers itself (no route, redirect)
//       outcome: no route                  # forward | redirect | direct response | no listener | no route config
//                                          # | no virtual host | no route | passthrough
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { formatPath, locate } from '../config/paths.ts';
import { explain } from './explain.ts';
import { grpcCodeName } from './filters.ts';
import type { MeshView } from './origins.ts';
import { renderExplanation } from './render.ts';
import type { Explanation } from './types.ts';

const percent = z.number().min(0).max(100);
const destination = z.strictObject({ host: z.string().min(1), subset: z.string().optional(), port: z.number().int().optional(), weight: percent.optional() });
const fault = z.union([
  z.literal('none'),
  z.strictObject({
    delay: z.strictObject({ fixedDelay: z.string().optional(), percent: percent.optional() }).optional(),
    abort: z.strictObject({ httpStatus: z.number().int().optional(), grpcStatus: z.string().optional(), percent: percent.optional() }).optional(),
  }),
]);
const testCase = z.strictObject({
  name: z.string().min(1),
  from: z.string().optional(),
  kind: z.enum(['envoy', 'grpc']).optional(),
  calleeKind: z.enum(['envoy', 'grpc']).optional(),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  ip: z.string().optional(),
  locality: z.string().optional(),
  request: z.string().min(1),
  headers: z.union([z.record(z.string(), z.string()), z.array(z.string())]).optional(),
  expect: z.strictObject({
    route: z.string().optional(),
    destination: z.union([destination, z.array(destination).min(1)]).optional(),
    status: z.number().int().optional(),
    outcome: z.enum(['forward', 'redirect', 'direct response', 'no listener', 'no route config', 'no virtual host', 'no route', 'passthrough']).optional(),
    fault: fault.optional(),
    decision: z.enum(['allow', 'deny', 'unknown', 'mixed']).optional(),
    rateLimited: z.boolean().optional(),
  }),
});
const testFile = z.strictObject({ tests: z.array(testCase).min(1) });
export type RouteTestCase = z.infer<typeof testCase>;

export interface LoadedCase { file: string; line: number; test: RouteTestCase }
export interface FileProblem { file: string; line: number; col: number; path: string; message: string }

export function loadRouteTests(file: string, text = readFileSync(file, 'utf8')): { cases: LoadedCase[]; problems: FileProblem[] } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true });
  if (doc.errors.length) {
    return { cases: [], problems: doc.errors.map((e) => ({ file, ...(e.linePos?.[0] ?? { line: 1, col: 1 }), path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}` })) };
  }
  const parsed = testFile.safeParse(doc.toJS());
  if (!parsed.success) {
    return {
      cases: [],
      problems: parsed.error.issues.map((i) => {
        let path = i.path.filter((p): p is string | number => typeof p !== 'symbol');
        let message = i.message;
        // Point at the unknown field itself, not at the object holding it.
        if (i.code === 'unrecognized_keys') [path, message] = [[...path, i.keys[0]!], `unknown field${i.keys.length > 1 ? `s ${i.keys.join(', ')}` : ''}`];
        const pos = locate(doc, lc, file, path, i.code === 'unrecognized_keys');
        return { file, line: pos.line, col: pos.col, path: formatPath(path), message };
      }),
    };
  }
  return { cases: parsed.data.tests.map((test, k) => ({ file, line: locate(doc, lc, file, ['tests', k]).line, test })), problems: [] };
}

export interface CaseResult { case: LoadedCase; diffs: Array<{ field: string; expected: string; got: string }>; explanation?: Explanation; error?: string }

const sameHost = (want: string, got: string | undefined) => !!got && (got === want || got.startsWith(`${want}.`));
const pct = (share: number) => Math.round(share * 10_000) / 100;

function gotDestinations(e: Explanation): string {
  return e.destinations.map((d) => `${d.host ?? d.cluster}${d.port ? `:${d.port}` : ''}${d.subset ? ` subset ${d.subset}` : ''} weight ${pct(d.share)}`).join(', ') || `none (${e.outcome.kind})`;
}

function faultText(e: Explanation): string {
  const applied = e.faults.filter((f) => !f.notApplied && f.share > 0);
  if (!applied.length) return 'none';
  return applied.map((f) => (f.kind === 'delay' ? `delay ${f.delay ?? 'from header'} ${pct(f.share)}%` : `abort ${f.grpcStatus !== undefined ? grpcCodeName(f.grpcStatus) : (f.httpStatus ?? 'from header')} ${pct(f.share)}%`)).join(', ');
}

/** An expected fault in the same words as faultText, unspecified parts left out. */
function expectedFaultText(f: Exclude<z.infer<typeof fault>, 'none'>): string {
  const parts: string[] = [];
  const pc = (p?: number) => (p === undefined ? '' : ` ${p}%`);
  if (f.delay) parts.push(`delay${f.delay.fixedDelay ? ` ${f.delay.fixedDelay}` : ''}${pc(f.delay.percent)}`);
  if (f.abort) parts.push(`abort${f.abort.grpcStatus ? ` ${f.abort.grpcStatus}` : f.abort.httpStatus !== undefined ? ` ${f.abort.httpStatus}` : ''}${pc(f.abort.percent)}`);
  return parts.join(', ') || 'a fault';
}

export function checkCase(view: MeshView, c: LoadedCase): CaseResult {
  const t = c.test;
  let e: Explanation;
  try {
    const headers = Array.isArray(t.headers) ? t.headers : Object.entries(t.headers ?? {}).map(([k, v]) => `${k}: ${v}`);
    e = explain(view, { ...t, headers });
  } catch (err) {
    return { case: c, diffs: [], error: (err as Error).message };
  }
  const diffs: CaseResult['diffs'] = [];
  const x = t.expect;
  if (x.route !== undefined) {
    const got = e.route?.name;
    const ok = got !== undefined && (got === x.route || got.endsWith(`/${x.route}`));
    if (!ok) diffs.push({ field: 'route', expected: x.route, got: got ?? `none (${e.outcome.summary})` });
  }
  if (x.destination !== undefined) {
    const want = Array.isArray(x.destination) ? x.destination : [x.destination];
    const ok =
      want.length === e.destinations.length &&
      want.every((w) => e.destinations.some((d) => sameHost(w.host, d.host) && (w.subset ?? undefined) === d.subset && (w.port === undefined || w.port === d.port) && (w.weight === undefined || Math.abs(w.weight - pct(d.share)) < 0.01)));
    if (!ok) diffs.push({ field: 'destination', expected: want.map((w) => `${w.host}${w.port ? `:${w.port}` : ''}${w.subset ? ` subset ${w.subset}` : ''}${w.weight !== undefined ? ` weight ${w.weight}` : ''}`).join(', '), got: gotDestinations(e) });
  }
  if (x.outcome !== undefined && e.outcome.kind !== x.outcome) diffs.push({ field: 'outcome', expected: x.outcome, got: `${e.outcome.kind} (${e.outcome.summary})` });
  if (x.status !== undefined && e.outcome.status !== x.status) diffs.push({ field: 'status', expected: String(x.status), got: e.outcome.status !== undefined ? String(e.outcome.status) : `none (${e.outcome.summary})` });
  if (x.fault !== undefined) {
    const got = faultText(e);
    let ok: boolean;
    if (x.fault === 'none') ok = got === 'none';
    else {
      const applied = e.faults.filter((f) => !f.notApplied && f.share > 0);
      const d = applied.find((f) => f.kind === 'delay');
      const a = applied.find((f) => f.kind === 'abort');
      ok = (!!x.fault.delay === !!d) && (!!x.fault.abort === !!a);
      if (ok && x.fault.delay && d) ok = (x.fault.delay.fixedDelay === undefined || x.fault.delay.fixedDelay === d.delay) && (x.fault.delay.percent === undefined || Math.abs(x.fault.delay.percent - pct(d.share)) < 0.01);
      if (ok && x.fault.abort && a) {
        ok = (x.fault.abort.httpStatus === undefined || x.fault.abort.httpStatus === a.httpStatus) &&
          (x.fault.abort.grpcStatus === undefined || (a.grpcStatus !== undefined && x.fault.abort.grpcStatus === grpcCodeName(a.grpcStatus))) &&
          (x.fault.abort.percent === undefined || Math.abs(x.fault.abort.percent - pct(a.share)) < 0.01);
      }
    }
    if (!ok) diffs.push({ field: 'fault', expected: x.fault === 'none' ? 'none' : expectedFaultText(x.fault), got });
  }
  if (x.decision !== undefined && e.decision !== x.decision) diffs.push({ field: 'decision', expected: x.decision, got: e.decision === 'none' ? `none (${e.outcome.kind}: no callee was reached)` : e.decision });
  if (x.rateLimited !== undefined) {
    const got = e.rateLimits.some((r) => r.enforcedShare > 0);
    if (got !== x.rateLimited) diffs.push({ field: 'rateLimited', expected: String(x.rateLimited), got: `${got}${e.rateLimits.length ? ` (${e.rateLimits.map((r) => `${r.side} ${r.tokens} per ${r.fillInterval}${r.enforcedShare > 0 ? '' : ' shadow'}`).join(', ')})` : ''}` });
  }
  return { case: c, diffs, explanation: e };
}

export function formatResult(r: CaseResult): string {
  const head = `${r.case.file}:${r.case.line} ${r.case.test.name}`;
  if (r.error) return `FAIL ${head}\n  error: ${r.error}\n`;
  if (!r.diffs.length) return `ok   ${head}\n`;
  const lines = [`FAIL ${head}`];
  const w = Math.max(...r.diffs.map((d) => d.field.length));
  for (const d of r.diffs) {
    lines.push(`  ${d.field.padEnd(w)}  expected: ${d.expected}`);
    lines.push(`  ${' '.repeat(w)}       got: ${d.got}`);
  }
  lines.push('  explain trace:');
  for (const l of renderExplanation(r.explanation!).trimEnd().split('\n')) lines.push(`    ${l}`);
  return `${lines.join('\n')}\n`;
}

export const formatProblem = (p: FileProblem) => `${p.file}:${p.line}:${p.col} ${p.path ? `${p.path}: ` : ''}${p.message}`;

export interface RunCounts {
  passed: number;
  failed: number;
  /** Test files that could not be read or are malformed (their cases did not run), and their errors. */
  filesWithErrors: number;
  fileErrors: number;
  /** Rules in the config directory that were rejected. */
  ruleErrors: number;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `2 passed, 1 failed[, 1 file with errors (3 errors)][, 2 rule errors]`: tests are counted apart from errors. */
export function formatSummary(c: RunCounts): string {
  const parts = [`${c.passed} passed`, `${c.failed} failed`];
  if (c.filesWithErrors) parts.push(`${c.filesWithErrors} ${c.filesWithErrors === 1 ? 'file' : 'files'} with errors (${plural(c.fileErrors, 'error')})`);
  if (c.ruleErrors) parts.push(plural(c.ruleErrors, 'rule error'));
  return parts.join(', ');
}

/** Any failed test, file error or rule error fails the run. */
export const runFailed = (c: RunCounts) => c.failed + c.filesWithErrors + c.ruleErrors > 0;
