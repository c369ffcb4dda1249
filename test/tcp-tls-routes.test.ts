// VirtualService tcp and tls routes: what the schema accepts and refuses (Istio's rules, at the
// field that is wrong), the cross-object checks, the model's L4 tables, the sidecar's outbound
// filter chains (checked against Envoy's protos), the proxyless gRPC warning and explain for a
// TCP connection and a TLS handshake.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { explain } from '../control-plane/explain/explain.ts';
import { checkCase, loadRouteTests } from '../control-plane/explain/route-tests.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import type { Json } from '../control-plane/json.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { LISTENER } from '../control-plane/translate/type-urls.ts';
import { ProxyGroups } from '../control-plane/xds/proxy-groups.ts';
import { reuseUnchanged, sameForProxies } from '../control-plane/model/reuse.ts';
import { translateChanges } from '../control-plane/translate/changes.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';

const SE = (name: string, host: string, ports: string, extra = '') =>
  `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: default}\nspec:\n  hosts: [${host}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: ${ports}\n${extra}`;
const VS = (name: string, body: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: default}\nspec:\n${body}`;
const DR = `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: db, namespace: default}\nspec:\n  host: db.default.svc.cluster.local\n  subsets: [{name: v1, labels: {v: '1'}}, {name: v2, labels: {v: '2'}}]\n`;

const DB = SE('db', 'db.default.svc.cluster.local', '[{number: 5432, name: tcp, protocol: TCP}]', "  addresses: [10.96.0.5]\n  endpoints: [{address: 10.1.0.1, labels: {v: '1'}}, {address: 10.1.0.2, labels: {v: '2'}}]\n");
const WEB = SE('web', 'web.example.com', '[{number: 443, name: tls, protocol: TLS}, {number: 8080, name: http, protocol: HTTP}]', '  endpoints: [{address: 10.1.0.9}]\n');

function problems(text: string): string[] {
  return parseConfigText('t.yaml', text).errors.map((e) => `${e.path}: ${e.message}`);
}

function build(...docs: string[]) {
  return compile(parseConfigText('t.yaml', docs.join('---\n')));
}

const sidecar = (labels: Record<string, string> = { app: 'web' }) => proxyFromNode({ id: 'sidecar~10.0.0.9~web-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: labels } });
const grpcClient = proxyFromNode({ id: 'sidecar~10.0.0.10~c-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', GENERATOR: 'grpc' } });

/** The sidecar's listener for a port: every resource checked against Envoy's protos first. */
function listener(state: ReturnType<typeof build>, port: number, proxy = sidecar()): Json {
  const res = translate(state.model, proxy);
  for (const r of res[LISTENER]) expect(checkResource(r), String(r.name)).toEqual([]);
  const l = res[LISTENER].find((x) => x.name === `0.0.0.0_${port}`);
  expect(l, `listener 0.0.0.0_${port}`).toBeDefined();
  return l!;
}

/** Each chain as `match -> cluster or weighted clusters`. */
function chains(l: Json): string[] {
  return (l.filter_chains as Json[]).map((c) => {
    const m = c.filter_chain_match as Json | undefined;
    const where = [...((m?.prefix_ranges as Json[] | undefined) ?? []).map((r) => `${String(r.address_prefix)}/${String(r.prefix_len)}`), ...((m?.server_names as string[] | undefined) ?? [])].join(',') || '*';
    const f = (c.filters as Json[])[0]!;
    const t = f.typed_config as Json;
    const to = t.cluster ? String(t.cluster) : t.weighted_clusters ? ((t.weighted_clusters as Json).clusters as Json[]).map((w) => `${String(w.name)}=${String(w.weight)}`).join('+') : String(f.name);
    return `${where} -> ${to}`;
  });
}

describe('tcp/tls schema', () => {
  it('accepts a VirtualService with only tcp or only tls routes (http is no longer required)', () => {
    for (const body of [
      '  hosts: [db]\n  tcp: [{route: [{destination: {host: db}}]}]\n',
      '  hosts: [db]\n  tcp: [{match: [{port: 5432, destinationSubnets: [10.0.0.0/8, 10.1.2.3], sourceLabels: {app: a}, sourceNamespace: ns, gateways: [mesh, istio-system/gw]}], route: [{destination: {host: db, subset: v1, port: {number: 5432}}, weight: 60}, {destination: {host: db, subset: v2}, weight: 40}]}]\n',
      '  hosts: ["*.example.com"]\n  tls: [{match: [{sniHosts: [a.example.com, "*.b.example.com"], port: 443}], route: [{destination: {host: a.example.com}}]}]\n',
    ]) {
      const r = parseConfigText('t.yaml', VS('x', body));
      expect(r.errors.map(formatError), body).toEqual([]);
    }
  });

  it("refuses what Istio refuses, at the field that is wrong", () => {
    expect(problems(VS('x', '  hosts: [db]\n'))).toEqual(['spec: http, tcp or tls must be provided in virtual service']);
    expect(problems(VS('x', '  hosts: [db]\n  tcp: [{match: [{port: 5432}]}]\n'))).toEqual(['spec.tcp[0].route: TCP route is required: list at least one destination']);
    expect(problems(VS('x', '  hosts: [db]\n  tcp: [{route: [{destination: {host: db}, weight: 0}, {destination: {host: db, subset: v2}}]}]\n'))).toEqual([
      'spec.tcp[0].route: total destination weight = 0: with several destinations the weights must add up to more than 0 (they are relative)',
    ]);
    expect(problems(VS('x', '  hosts: [db]\n  tcp: [{match: [{destinationSubnets: [10.0.0.0/33]}], route: [{destination: {host: db}}]}]\n'))).toEqual([
      'spec.tcp[0].match[0].destinationSubnets[0]: invalid prefix length in "10.0.0.0/33": must be 0 to 32',
    ]);
    expect(problems(VS('x', '  hosts: [db]\n  tcp: [{match: [{gateways: ["bad/Name_"]}], route: [{destination: {host: db}}]}]\n'))).toEqual([
      'spec.tcp[0].match[0].gateways[0]: invalid value for gateway name: "Name_"',
    ]);
    expect(problems(VS('x', '  hosts: [db]\n  tcp: [{match: [{sniHosts: [db]}], route: [{destination: {host: db}}]}]\n'))).toEqual([
      'spec.tcp[0].match[0].sniHosts: field not supported by meshpilot',
    ]);
    expect(problems(VS('x', '  hosts: [a.example.com]\n  tls: [{route: [{destination: {host: a.example.com}}]}]\n'))).toEqual([
      'spec.tls[0].match: TLS route must have at least one match condition',
    ]);
    expect(problems(VS('x', '  hosts: [a.example.com]\n  tls: [{match: [{port: 443}], route: [{destination: {host: a.example.com}}]}]\n'))).toEqual([
      'spec.tls[0].match[0].sniHosts: TLS match must have at least one SNI host',
    ]);
    expect(problems(VS('x', '  hosts: ["*.example.com"]\n  tls: [{match: [{sniHosts: [a.example.com, a.other.com]}], route: [{destination: {host: a.example.com}}]}]\n'))).toEqual([
      'spec.tls[0].match[0].sniHosts[1]: SNI host "a.other.com" is not a compatible subset of any of the virtual service hosts: [*.example.com]',
    ]);
    expect(problems(VS('x', '  hosts: [a.example.com]\n  tls: [{match: [{sniHosts: [a.example.com]}]}]\n'))).toEqual(['spec.tls[0].route: TLS route is required: list at least one destination']);
  });

  it('gives the error its position in the file', () => {
    const r = parseConfigText('t.yaml', VS('x', '  hosts: [a.example.com]\n  tls:\n  - match:\n    - sniHosts: [b.example.com]\n    route: [{destination: {host: a.example.com}}]\n'));
    expect(r.errors.map(formatError)).toEqual([expect.stringMatching(/^t\.yaml:8:\d+ spec\.tls\[0\]\.match\[0\]\.sniHosts\[0\]: SNI host "b\.example\.com" is not a compatible subset/)]);
  });
});

describe('tcp/tls model', () => {
  it('rejects a route to an unknown host or subset (the rule is left out, the rest stays)', () => {
    const s = build(DB, VS('bad', '  hosts: [db]\n  tcp: [{route: [{destination: {host: nowhere}}]}]\n'), VS('bad2', '  hosts: [db]\n  tcp: [{route: [{destination: {host: db, subset: v9}}]}]\n'));
    expect(s.errors.map(formatIssue)).toEqual([
      't.yaml:17:39 spec.tcp[0].route[0].destination.host: destination host nowhere.default.svc.cluster.local is not a known service (declare it with a ServiceEntry) (VirtualService default/bad)',
      't.yaml:24:51 spec.tcp[0].route[0].destination.subset: subset v9 is not defined by any DestinationRule for db.default.svc.cluster.local (VirtualService default/bad2)',
    ]);
    expect(s.model.l4Tables.map((t) => [t.host, t.port, t.routes.map((r) => r.name)])).toEqual([['db.default.svc.cluster.local', 5432, ['default']]]);
  });

  it('keeps weights relative, with a warning when they do not add up to 100', () => {
    const s = build(DB, DR, VS('db', '  hosts: [db]\n  tcp: [{route: [{destination: {host: db, subset: v1}, weight: 3}, {destination: {host: db, subset: v2}, weight: 1}]}]\n'));
    expect(s.errors).toEqual([]);
    expect(s.warnings.map((w) => w.message)).toContain('the weights add up to 4, not 100: they are taken as relative shares (v1 75%, v2 25%)');
    expect(s.model.l4Tables[0]!.routes[0]!.destinations.map((d) => [d.cluster, d.weight])).toEqual([['outbound|5432|v1|db.default.svc.cluster.local', 3], ['outbound|5432|v2|db.default.svc.cluster.local', 1]]);
  });

  it('warns (never rejects) when a destination has no endpoints', () => {
    const s = build(DB, DR.replace("{name: v2, labels: {v: '2'}}", "{name: v2, labels: {v: '2'}}, {name: v3, labels: {v: '3'}}"), VS('db', '  hosts: [db]\n  tcp: [{route: [{destination: {host: db, subset: v1}, weight: 50}, {destination: {host: db, subset: v3}, weight: 50}]}]\n'));
    expect(s.errors).toEqual([]);
    expect(s.warnings.map((w) => `${w.path}: ${w.message}`)).toContain("spec.tcp[0].route[1].destination.subset: subset v3 of db.default.svc.cluster.local has no endpoints now: its 50% share of this route's connections fails (Envoy closes them)");
  });

  it('warns about a route no port of its hosts takes', () => {
    const s = build(WEB, VS('w', '  hosts: [web.example.com]\n  tcp: [{match: [{port: 9999}], route: [{destination: {host: web.example.com, port: {number: 443}}}]}]\n'));
    expect(s.warnings.map((w) => `${w.path}: ${w.message}`)).toContain('spec.tcp[0]: this tcp route applies to no TCP, TLS or HTTPS port of its hosts, so it is never used');
  });
});

describe('tcp/tls sidecar translation', () => {
  it('a TCP port without a rule goes to its own cluster by VIP, anything else passes through', () => {
    expect(chains(listener(build(DB), 5432))).toEqual(['10.96.0.5/32 -> outbound|5432||db.default.svc.cluster.local', '* -> PassthroughCluster']);
  });

  it('splits by weight between subsets, takes destinationSubnets first and source-scoped matches only for that source', () => {
    const s = build(DB, DR, VS('db', [
      '  hosts: [db]',
      '  tcp:',
      '  - match: [{destinationSubnets: [10.97.0.0/16]}]',
      '    route: [{destination: {host: db, subset: v2}}]',
      '  - match: [{sourceLabels: {app: reports}}]',
      '    route: [{destination: {host: db, subset: v1}}]',
      '  - match: [{gateways: [istio-system/edge]}]',
      '    route: [{destination: {host: db, subset: v1}}]',
      '  - route: [{destination: {host: db, subset: v1}, weight: 80}, {destination: {host: db, subset: v2}, weight: 20}]',
      '',
    ].join('\n')));
    expect(s.errors).toEqual([]);
    expect(chains(listener(s, 5432))).toEqual(['10.97.0.0/16 -> outbound|5432|v2|db.default.svc.cluster.local', '10.96.0.5/32 -> outbound|5432|v1|db.default.svc.cluster.local=80+outbound|5432|v2|db.default.svc.cluster.local=20', '* -> PassthroughCluster']);
    // The reports workload's own match claims the VIP first; the split never sees its connections.
    expect(chains(listener(s, 5432, sidecar({ app: 'reports' })))).toEqual(['10.97.0.0/16 -> outbound|5432|v2|db.default.svc.cluster.local', '10.96.0.5/32 -> outbound|5432|v1|db.default.svc.cluster.local', '* -> PassthroughCluster']);
  });

  it('puts callers that a tcp sourceLabels match tells apart in different proxy groups', () => {
    const s = build(DB, DR, VS('db', '  hosts: [db]\n  tcp:\n  - match: [{sourceLabels: {app: reports}}]\n    route: [{destination: {host: db, subset: v1}}]\n  - route: [{destination: {host: db, subset: v2}}]\n'));
    const groups = new ProxyGroups();
    groups.update(s.model);
    expect(groups.groupOf(sidecar({ app: 'reports' }))).not.toBe(groups.groupOf(sidecar({ app: 'web' })));
  });

  it('a tcp route edit reaches the proxies: the models differ for them and the listener is translated afresh', () => {
    const split = (w: number) => VS('db', `  hosts: [db]\n  tcp: [{route: [{destination: {host: db, subset: v1}, weight: ${w}}, {destination: {host: db, subset: v2}, weight: ${100 - w}}]}]\n`);
    const before = build(DB, DR, split(80)).model;
    const after = reuseUnchanged(build(DB, DR, split(50)).model, before);
    expect(sameForProxies(after, before)).toBe(false);
    expect(translateChanges(before, after, sidecar(), new TranslateMemo())).toBeUndefined();
    expect(chains(listener({ model: after } as ReturnType<typeof build>, 5432))[0]).toContain('=50+');
    expect(sameForProxies(reuseUnchanged(build(DB, DR, split(80)).model, before), before)).toBe(true);
  });

  it('a match whose gateways include mesh applies to sidecars', () => {
    const s = build(DB, DR, VS('db', '  hosts: [db]\n  tcp: [{match: [{gateways: [mesh, istio-system/edge]}], route: [{destination: {host: db, subset: v2}}]}]\n'));
    expect(chains(listener(s, 5432))).toEqual(['10.96.0.5/32 -> outbound|5432|v2|db.default.svc.cluster.local', '* -> PassthroughCluster']);
  });

  it('routes TLS by SNI (exact over wildcard) with the tls_inspector, next to the HTTP port of the same service', () => {
    const wildcard = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: any, namespace: default}\nspec:\n  hosts: ['*.example.com']\n  location: MESH_EXTERNAL\n  resolution: NONE\n  ports: [{number: 443, name: tls, protocol: TLS}]\n";
    const s = build(WEB, wildcard, SE('other', 'other.example.com', '[{number: 443, name: tls, protocol: TLS}]', '  endpoints: [{address: 10.1.0.8}]\n'),
      VS('w', '  hosts: ["*.example.com"]\n  tls: [{match: [{sniHosts: ["*.example.com"]}], route: [{destination: {host: other.example.com}}]}]\n'));
    expect(s.errors).toEqual([]);
    const l = listener(s, 443);
    expect((l.listener_filters as Json[]).map((f) => f.name)).toEqual(['envoy.filters.listener.tls_inspector']);
    expect(chains(l)).toEqual(['*.example.com -> outbound|443||other.example.com', 'other.example.com -> outbound|443||other.example.com', 'web.example.com -> outbound|443||web.example.com', '* -> PassthroughCluster']);
    // The HTTP port keeps its connection manager and no SNI inspection.
    const http = listener(s, 8080);
    expect(http.listener_filters).toBeUndefined();
    expect(chains(http)).toEqual(['* -> envoy.filters.network.http_connection_manager']);
  });

  it('services without VIP sharing a TCP port claim nothing by address: their connections go on as they came, with a warning', () => {
    const a = SE('a', 'a.default.svc.cluster.local', '[{number: 6379, name: redis, protocol: REDIS}]', '  endpoints: [{address: 10.1.0.1}]\n');
    const b = SE('b', 'b.default.svc.cluster.local', '[{number: 6379, name: redis, protocol: REDIS}]', '  endpoints: [{address: 10.1.0.2}]\n');
    const s = build(a, b, VS('a', '  hosts: [a]\n  tcp:\n  - match: [{destinationSubnets: [10.50.0.0/16]}]\n    route: [{destination: {host: b}}]\n  - route: [{destination: {host: b}}]\n'));
    expect(s.errors).toEqual([]);
    expect(chains(listener(s, 6379))).toEqual(['10.50.0.0/16 -> outbound|6379||b.default.svc.cluster.local', '* -> PassthroughCluster']);
    expect(s.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'spec.tcp[1]: a.default.svc.cluster.local has no VIP (addresses) and port 6379 is shared with b.default.svc.cluster.local: its connections cannot be told apart by address, so this route applies only through destinationSubnets (the others go on to the address the caller connected to)',
    ]);
    // Alone on its port, a service without VIP takes the port's connections (as Istio).
    expect(chains(listener(build(a), 6379))).toEqual(['* -> outbound|6379||a.default.svc.cluster.local']);
  });

  it('never gives Envoy two chains for the same address (the earlier route keeps it)', () => {
    const s = build(DB, DR, VS('db', '  hosts: [db]\n  tcp:\n  - match: [{destinationSubnets: [10.96.0.5, 10.98.0.0/16]}]\n    route: [{destination: {host: db, subset: v1}}]\n  - match: [{destinationSubnets: [10.98.0.0/16, 10.99.0.0/16]}]\n    route: [{destination: {host: db, subset: v2}}]\n'));
    expect(chains(listener(s, 5432))).toEqual(['10.96.0.5/32,10.98.0.0/16 -> outbound|5432|v1|db.default.svc.cluster.local', '10.99.0.0/16 -> outbound|5432|v2|db.default.svc.cluster.local', '* -> PassthroughCluster']);
  });

  it('gives proxyless gRPC nothing for tcp/tls, and says so on a service gRPC clients call', () => {
    const grpcSvc = SE('db', 'db.default.svc.cluster.local', '[{number: 5432, name: tcp, protocol: TCP}, {number: 50051, name: grpc, protocol: GRPC}]', "  endpoints: [{address: 10.1.0.1, labels: {v: '1'}}]\n");
    const s = build(grpcSvc, DR, VS('db', '  hosts: [db]\n  tcp: [{match: [{port: 5432}], route: [{destination: {host: db, subset: v1, port: {number: 5432}}}]}]\n'));
    expect(s.errors).toEqual([]);
    expect(s.warnings.map((w) => `${w.path}: ${w.message}`)).toContain('spec.tcp: proxyless gRPC clients do no TCP routing: these routes apply to Envoy sidecars only and are left out for proxyless gRPC clients');
    const res = translate(s.model, grpcClient);
    expect(res[LISTENER].map((l) => String(l.name)).every((n) => n.endsWith(':50051'))).toBe(true);
  });
});

describe('tcp/tls explain', () => {
  const state = build(DB, DR, WEB, VS('db', '  hosts: [db]\n  tcp:\n  - match: [{destinationSubnets: [10.97.0.0/16]}]\n    route: [{destination: {host: db, subset: v2}}]\n  - route: [{destination: {host: db, subset: v1}, weight: 3}, {destination: {host: db, subset: v2}, weight: 1}]\n'));
  const ask = (request: string) => explain(state, { request, namespace: 'default', labels: { app: 'web' } });

  it('follows a TCP connection by VIP to the weighted split, pointing at the rule', () => {
    const e = ask('tcp://db:5432');
    expect(e.listener).toBe('0.0.0.0_5432');
    expect(e.route?.rule).toMatchObject({ key: 'VirtualService/default/db', path: 'spec.tcp[1]' });
    expect(e.destinations.map((d) => [d.cluster, d.share])).toEqual([['outbound|5432|v1|db.default.svc.cluster.local', 0.75], ['outbound|5432|v2|db.default.svc.cluster.local', 0.25]]);
    expect(e.outcome.kind).toBe('forward');
  });

  it('takes the destinationSubnets chain for an address in it, and passthrough for any other', () => {
    expect(ask('tcp://10.97.1.2:5432').destinations.map((d) => d.cluster)).toEqual(['outbound|5432|v2|db.default.svc.cluster.local']);
    const other = ask('tcp://192.0.2.1:5432');
    expect(other.outcome.kind).toBe('passthrough');
    expect(other.routes.find((r) => r.result === 'matched')?.name).toBe('PassthroughFilterChain');
  });

  it('follows a TLS handshake by its SNI', () => {
    const e = ask('tls://web.example.com:443');
    expect(e.route?.match).toBe('SNI web.example.com');
    expect(e.destinations.map((d) => d.cluster)).toEqual(['outbound|443||web.example.com']);
    expect(ask('tls://unknown.example.org:443').outcome.kind).toBe('passthrough');
  });

  it('route tests take tcp:// and tls:// requests (route by the rule\'s tcp/tls index), once right and once wrong', () => {
    const { cases, problems } = loadRouteTests('cases.yaml', [
      'tests:',
      '- name: right',
      '  labels: { app: web }',
      '  request: tcp://db:5432',
      '  expect: { route: default/db/tcp/1, destination: [{ host: db.default.svc.cluster.local, subset: v1, weight: 75 }, { host: db.default.svc.cluster.local, subset: v2, weight: 25 }] }',
      '- name: wrong',
      '  labels: { app: web }',
      '  request: tls://web.example.com:443',
      '  expect: { destination: { host: db.default.svc.cluster.local }, outcome: passthrough }',
      '',
    ].join('\n'));
    expect(problems).toEqual([]);
    const diffs = cases.map((c) => checkCase(state, c).diffs.map((d) => d.field));
    expect(diffs).toEqual([[], ['destination', 'outcome']]);
  });

  it('tells a proxyless gRPC caller it has no L4 routing', () => {
    const e = explain(state, { request: 'tcp://db:5432', namespace: 'default', kind: 'grpc' });
    expect(e.outcome.summary).toMatch(/no TCP\/TLS routing/);
  });
});

it('keeps the golden L4 case schema-valid and its rules accepted', () => {
  const file = 'test/golden/in/tcp-tls-routes.yaml';
  const s = compile(parseConfigText(file, fs.readFileSync(file, 'utf8')));
  expect(s.errors).toEqual([]);
});
