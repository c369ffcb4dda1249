// meshpilot validate checks each distinct generated resource once, yet prints exactly what checking
// every caller's whole config prints; its progress line appears only on a terminal.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDirectory } from '../control-plane/config/load.ts';
import type { Violation } from '../control-plane/envoy/check.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import { DEFAULT_MESH } from '../control-plane/model/mesh-identity.ts';
import { terminalProgress } from '../control-plane/progress.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import type { Proxy } from '../control-plane/translate/proxy.ts';
import { translate, type Resource } from '../control-plane/translate/translate.ts';
import { TYPE_ORDER } from '../control-plane/translate/type-urls.ts';
import { ResourceChecks, validateRules } from '../control-plane/validate.ts';
import { destinationRule, endpointsAt, httpRoute, serviceEntry, to, virtualService, yamlDocs } from './helpers/yaml-builders.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-validate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const gateways = { n2: [{ address: '192.0.2.1', port: 15443 }] };

/** Two namespaces, endpoints in two zones and two networks: 2 kinds x 2 namespaces x 4 topologies. */
function writeMesh(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const a = 'a.default.svc.cluster.local';
  const b = 'b.shop.svc.cluster.local';
  fs.writeFileSync(path.join(dir, 'a.yaml'), yamlDocs(
    serviceEntry({ hosts: [a], endpoints: endpointsAt(['10.0.0.1@r1/z1', '10.0.0.2@r1/z2', '10.0.1.1@r1/z1#n2'], [{ version: 'v1' }, { version: 'v2' }, { version: 'v2' }]) }),
    destinationRule({ host: a, subsets: ['v1', 'v2'] }),
    virtualService({ hosts: [a], http: [httpRoute([to(a, 'v1', 90), to(a, 'v2', 10)])] }),
  ));
  fs.writeFileSync(path.join(dir, 'b.yaml'), yamlDocs(
    serviceEntry({ hosts: [b], namespace: 'shop', endpoints: endpointsAt(['10.0.2.1@r1/z1', '10.0.2.2@r1/z2']) }),
    virtualService({ hosts: [b], namespace: 'shop', http: [httpRoute([to(b)])] }),
  ));
}

/** A stand-in for Envoy's verdicts that finds something in several kinds of resource. */
function stubCheck(calls: { n: number }) {
  return (r: Resource): Violation[] => {
    calls.n++;
    const name = String(r.name ?? r.cluster_name);
    if (name.includes('|v2|') && r.cluster_name) return [{ path: 'endpoints[0]', message: 'stub: a v2 assignment' }];
    if (name.includes('b.shop') && !r.cluster_name) return [{ path: 'name', message: 'stub: first' }, { path: 'type', message: 'stub: second' }];
    if (String(r['@type']).endsWith('RouteConfiguration')) return [{ path: 'virtual_hosts', message: 'stub: every route table' }];
    return [];
  };
}

/** What validate printed before it checked each distinct resource once: every caller's whole config. */
function everyCallerChecked(dir: string, check: (r: Resource) => Violation[]): { lines: string[]; code: number } {
  const lines: string[] = [];
  const state = compile({ ...loadDirectory(dir), networkGateways: gateways }, [], undefined, DEFAULT_MESH);
  for (const e of state.errors) lines.push(`error: ${formatIssue(e)}`);
  for (const w of state.warnings) lines.push(`warning: ${formatIssue(w)}`);
  const namespaces = [...new Set(['default', ...state.accepted.map((x) => x.namespace)])].sort();
  let generatedErrors = 0;
  const topologies = new Map<string, Pick<Proxy, 'locality' | 'network'>>([['', { locality: { region: '', zone: '', subzone: '' } }]]);
  for (const s of state.model.services) for (const e of s.endpoints) {
    topologies.set(JSON.stringify([e.locality, e.network]), { locality: e.locality, ...(e.network ? { network: e.network } : {}) });
  }
  for (const namespace of namespaces) {
    for (const [kind, topology] of (['envoy', 'grpc'] as const).flatMap((k) => [...topologies.values()].map((t) => [k, t] as const))) {
      const proxy: Proxy = { id: `validate~${kind}~${namespace}`, kind, namespace, labels: {}, ...topology };
      const res = translate(state.model, proxy, new TranslateMemo());
      for (const t of TYPE_ORDER) {
        for (const r of res[t]) {
          for (const v of check(r)) {
            generatedErrors++;
            lines.push(`error: generated ${t.split('.').pop()} ${String(r.name ?? r.cluster_name)} for ${kind} in ${namespace}: ${v.path}: ${v.message}`);
          }
        }
      }
    }
  }
  const total = state.errors.length + generatedErrors;
  lines.push(`${state.accepted.length} rules valid, ${total} errors, ${state.warnings.length} warnings`);
  return { lines, code: total ? 1 : 0 };
}

describe('validate', () => {
  it('prints every caller\'s findings, in the same order, while checking each distinct resource once', () => {
    const dir = path.join(tmp, 'mesh');
    writeMesh(dir);
    const before = { n: 0 };
    const expected = everyCallerChecked(dir, stubCheck(before));
    const now = { n: 0 };
    const lines: string[] = [];
    const code = validateRules({ configDir: dir, networkGateways: gateways }, (l) => lines.push(l), undefined, new ResourceChecks(stubCheck(now)));
    expect(lines).toEqual(expected.lines);
    expect(code).toBe(expected.code);
    expect(code).toBe(1);
    // Findings for both namespaces, both kinds and several topologies are all there.
    expect(lines.filter((l) => l.includes('stub: every route table')).length).toBeGreaterThan(8);
    expect(lines.some((l) => l.includes('for grpc in shop: type: stub: second'))).toBe(true);
    expect(now.n).toBeLessThan(before.n / 4);
  });

  it('checks a resource once by object and once by content', () => {
    const calls = { n: 0 };
    const checks = new ResourceChecks(stubCheck(calls));
    const r: Resource = { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: 'outbound|80||b.shop.svc.cluster.local' };
    const first = checks.check(r);
    expect(first.map((v) => v.message)).toEqual(['stub: first', 'stub: second']);
    expect(checks.check(r)).toBe(first);
    expect(checks.check(structuredClone(r))).toBe(first);
    expect(checks.check({ ...r, name: 'other' })).toEqual([]);
    expect([calls.n, checks.checked]).toEqual([2, 2]);
  });

  it('checks the real thing with Envoy\'s rules by default', () => {
    const checks = new ResourceChecks();
    expect(checks.check({ '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: 'c', connect_timeout: 'soon' }).length).toBeGreaterThan(0);
  });
});

describe('progress', () => {
  const stream = (isTTY: boolean) => {
    const writes: string[] = [];
    return { writes, isTTY, columns: 40, write: (t: string) => writes.push(t) };
  };

  it('writes nothing when stderr is not a terminal', () => {
    const s = stream(false);
    const p = terminalProgress(s);
    p.update('translating for 4 proxies: 1/4');
    p.clear();
    expect(s.writes).toEqual([]);
  });

  it('rewrites one line on a terminal, at most every interval, and clears it', () => {
    const s = stream(true);
    const p = terminalProgress(s, 60_000);
    p.update('translating for 4 proxies: 1/4');
    p.update('translating for 4 proxies: 2/4'); // within the interval: skipped
    p.clear();
    p.clear(); // nothing shown: nothing to clear
    expect(s.writes).toEqual(['\r\x1b[2Ktranslating for 4 proxies: 1/4', '\r\x1b[2K']);
  });

  it('cuts a line to the terminal\'s width', () => {
    const s = stream(true);
    terminalProgress(s, 0).update(`reading rule files: ${'9'.repeat(80)}`);
    expect(s.writes).toEqual([`\r\x1b[2Kreading rule files: ${'9'.repeat(19)}`]);
  });
});
