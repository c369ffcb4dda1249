// Sidecar and exportTo input checks: Istio's rules, each problem with its position and field path;
// a bad object is left out and the rest of the file still loads.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';

function doc(kind: string, spec: string, name = 'x', namespace = 'default'): string {
  return `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
}

function problems(text: string): string[] {
  return parseConfigText('t.yaml', text).errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`);
}

function accepts(text: string): void {
  const r = parseConfigText('t.yaml', text);
  expect(r.errors.map(formatError)).toEqual([]);
  expect(r.objects.length).toBeGreaterThan(0);
}

describe('Sidecar', () => {
  it('takes Istio\'s fields in every networking apiVersion', () => {
    for (const v of ['v1', 'v1beta1', 'v1alpha3']) {
      accepts(doc('Sidecar', 'workloadSelector: {labels: {app: a}}\negress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  hosts: ["./reviews.default.svc.cluster.local", "*/ratings.default.svc.cluster.local"]\n- hosts: ["istio-system/*", "~/*", "./*.example.com"]\ningress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  defaultEndpoint: 127.0.0.1:8080\n- port: {number: 9443, protocol: HTTPS, name: https}\n  defaultEndpoint: unix:///var/run/app.sock\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}').replace('networking.istio.io/v1', `networking.istio.io/${v}`));
    }
    accepts(doc('Sidecar', 'outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: egress.istio-system.svc.cluster.local, port: {number: 443}}}'));
  });

  it('refuses what Istio refuses, with the position of each problem', () => {
    expect(problems(doc('Sidecar', 'workloadSelector: {labels: {app: a}}'))).toEqual(['4:1 spec: empty Sidecar: set egress, ingress, outboundTrafficPolicy or inboundConnectionPool']);
    expect(problems(doc('Sidecar', 'egress:\n- hosts: [reviews]\n- hosts: ["bad_ns/a", "./*x"]'))).toEqual([
      '6:5 spec.egress[0]: the egress listener without a port (the catch-all) must be the last one',
      '6:13 spec.egress[0].hosts[0]: "reviews" must be of the form namespace/dnsName (e.g. ./*, istio-system/*, */reviews.default.svc.cluster.local)',
      '7:13 spec.egress[1].hosts[0]: namespace "bad_ns" of "bad_ns/a" must be "*", ".", "~" or a namespace name',
      '7:25 spec.egress[1].hosts[1]: "./*x": invalid host "*x": a wildcard may only be a leading "*."',
    ]);
    expect(problems(doc('Sidecar', 'egress:\n- hosts: ["./*"]\n- port: {number: 80, protocol: HTTP, name: http}\n  hosts: ["./*"]'))).toEqual(['6:5 spec.egress[0]: the egress listener without a port (the catch-all) must be the last one']);
    expect(problems(doc('Sidecar', 'ingress:\n- port: {number: 80, protocol: HTTP, name: a}\n  defaultEndpoint: 10.0.0.1:80\n- port: {number: 80, protocol: HTTP, name: b}\n  bind: not-an-ip\n- port: {number: 81, protocol: HTTP, name: c}\n  tls: {mode: ISTIO_MUTUAL}'))).toEqual([
      '7:22 spec.ingress[0].defaultEndpoint: "10.0.0.1:80" must be 127.0.0.1:PORT, 0.0.0.0:PORT or unix:///path',
      '9:11 spec.ingress[1].bind: "not-an-ip" must be an IP address',
      '11:17 spec.ingress[2].tls.mode: ISTIO_MUTUAL is not allowed on a Sidecar ingress listener (the mesh mTLS is PeerAuthentication\'s)',
    ]);
    expect(problems(doc('Sidecar', 'ingress:\n- port: {number: 80, protocol: HTTP, name: a}\n- port: {number: 80, protocol: HTTP, name: b}'))).toEqual(['7:5 spec.ingress[1].port: port 80 is already used by ingress[0] (ports on one bind address must be unique)']);
    expect(problems(doc('Sidecar', 'outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: "*.example.com"}}'))).toEqual([
      '5:48 spec.outboundTrafficPolicy.egressProxy: egressProxy can only be set with mode ALLOW_ANY',
      '5:48 spec.outboundTrafficPolicy.egressProxy.port: egressProxy needs a port',
      '5:68 spec.outboundTrafficPolicy.egressProxy.host: egressProxy host must be a fully qualified name, not a wildcard',
    ]);
    expect(problems(doc('Sidecar', 'egress: [{hosts: ["./*"], captureMode: SOMETIMES}]'))[0]).toContain('spec.egress[0].captureMode: must be one of DEFAULT, IPTABLES, NONE');
    expect(problems(doc('Sidecar', 'workloadSelector: {labels: {}}\negress: [{hosts: ["./*"]}]'))).toEqual(['5:22 spec.workloadSelector.labels: must have at least one label']);
  });

  it('allows one selector-less Sidecar per namespace: the second is an error, the first and everything else stays', () => {
    const text = [doc('Sidecar', 'egress: [{hosts: ["./*"]}]', 'a'), doc('Sidecar', 'egress: [{hosts: ["*/*"]}]', 'b'), doc('Sidecar', 'egress: [{hosts: ["*/*"]}]', 'c', 'other')].join('---\n');
    const state = compile(parseConfigText('t.yaml', text));
    expect(state.errors.map(formatIssue)).toEqual(['t.yaml:10:1 spec: namespace default already has a Sidecar without workloadSelector (Sidecar/default/a); only one is allowed per namespace (Sidecar default/b)']);
    expect(state.model.sidecars.map((s) => s.key)).toEqual(['Sidecar/default/a', 'Sidecar/other/c']);
  });

  it('warns about what it accepts but does not apply yet', () => {
    const state = compile(parseConfigText('t.yaml', doc('Sidecar', 'egress: [{hosts: ["./*"], bind: 127.0.0.2}]\ninboundConnectionPool: {tcp: {maxConnections: 5}}')));
    expect(state.errors).toEqual([]);
    expect(state.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'spec.egress[0].bind: egress bind (a listener on its own address) is not applied by meshpilot yet (accepted; see README "Sidecar scoping and exportTo")',
      'spec.inboundConnectionPool: inboundConnectionPool is not applied by meshpilot yet (accepted; see README "Sidecar scoping and exportTo")',
    ]);
  });
});

describe('exportTo', () => {
  const se = (exportTo: string) => doc('ServiceEntry', `hosts: [a.example.com]\nexportTo: ${exportTo}\nports: [{number: 80, name: http, protocol: HTTP}]`);
  it('takes ".", "*", "~" and namespace names on ServiceEntry, VirtualService and DestinationRule', () => {
    accepts(se('["."]'));
    accepts(se('["*"]'));
    accepts(se('["~"]'));
    accepts(se('[".", team-a]'));
    accepts(doc('VirtualService', 'hosts: [a]\nexportTo: ["."]\nhttp: [{route: [{destination: {host: a}}]}]'));
    accepts(doc('DestinationRule', 'host: a\nexportTo: [default]'));
  });
  it('refuses duplicates, bad names, and "*" or "~" with anything else', () => {
    expect(problems(se('[".", "."]'))).toEqual(['6:19 spec.exportTo[1]: duplicate entry "."']);
    expect(problems(se('[Team_A]'))).toEqual(['6:14 spec.exportTo[0]: "Team_A" is not ".", "*", "~" or a namespace name']);
    expect(problems(se('["*", a]'))).toEqual(['6:14 spec.exportTo[0]: "*" cannot be combined with other exportTo entries']);
    expect(problems(se('[a, "~"]'))).toEqual(['6:17 spec.exportTo[1]: "~" cannot be combined with other exportTo entries']);
  });
});
