// Gateway and VirtualService gateway binding: what is refused (file:line:col, field path, Istio's
// reason), what is accepted with a warning, and that a refused rule leaves the rest in force.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }, { number: 9090, name: admin, protocol: HTTP }]
  endpoints: [{ address: 10.0.0.1 }]
---
`;

const gw = (servers: string) => `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: { name: gw, namespace: default }\nspec:\n  selector: { istio: ingressgateway }\n  servers:\n${servers.replace(/^/gm, '  ')}\n---\n`;
const vs = (name: string, body: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: ${name}, namespace: default }\nspec:\n${body.replace(/^/gm, '  ')}\n---\n`;

function issuesOf(text: string): string[] {
  const state = compile(parseConfigText('g.yaml', text));
  return [...state.errors.map((e) => `error: ${formatIssue(e)}`), ...state.warnings.map((w) => `warning: ${formatIssue(w)}`)];
}

describe('Gateway schema', () => {
  it('names the field and position of each problem, as Istio rejects them', () => {
    const text = gw(`- port: { number: 443, name: https, protocol: HTTPS }\n  hosts: ["foo/*.example.com", "Bad/x.example.com"]\n  tls: { mode: MUTUAL, credentialName: "" }`);
    const { errors } = parseConfigText('g.yaml', text);
    expect(errors.map(formatError)).toEqual([
      'g.yaml:8:34 spec.servers[0].hosts[1]: invalid namespace "Bad" in "Bad/x.example.com": expected "*", "." or a namespace name (Gateway default/gw)',
      'g.yaml:9:5 spec.servers[0].tls.serverCertificate: MUTUAL TLS requires a server certificate (serverCertificate, or credentialName) (Gateway default/gw)',
      'g.yaml:9:5 spec.servers[0].tls.privateKey: MUTUAL TLS requires a private key (privateKey, or credentialName) (Gateway default/gw)',
      'g.yaml:9:5 spec.servers[0].tls.caCertificates: MUTUAL TLS requires a client CA bundle (caCertificates, or credentialName) (Gateway default/gw)',
    ]);
  });

  it('accepts every server form Istio documents: hosts ns/host, ./host, */host, *; TLS by credential or files; httpsRedirect', () => {
    const text = SERVICE + gw([
      '- port: { number: 80, name: http, protocol: http }',
      '  hosts: ["*", "./a.example.com", "ns1/b.example.com", "*/*.c.example.com"]',
      '  tls: { httpsRedirect: true }',
      '- port: { number: 443, name: https, protocol: HTTPS }',
      '  hosts: [a.example.com]',
      '  tls: { mode: SIMPLE, serverCertificate: /c/tls.crt, privateKey: /c/tls.key }',
      '- port: { number: 8443, name: https-2, protocol: HTTPS }',
      '  bind: 10.0.0.5',
      '  hosts: [b.example.com]',
      '  tls: { mode: OPTIONAL_MUTUAL, credentialName: b-cert, minProtocolVersion: TLSV1_2 }',
    ].join('\n'));
    expect(issuesOf(text)).toEqual([]);
  });
});

describe('VirtualService gateways', () => {
  it('refuses ns/* and a bad name, and "*" for a rule bound to mesh', () => {
    const text = SERVICE + vs('a', 'hosts: [reviews]\ngateways: [ns1/*]\nhttp: [{ route: [{ destination: { host: reviews, port: { number: 9080 } } }] }]') + vs('b', 'hosts: ["*"]\nhttp: [{ route: [{ destination: { host: reviews, port: { number: 9080 } } }] }]');
    expect(issuesOf(text)).toEqual([
      'error: g.yaml:16:14 spec.gateways[0]: invalid value for gateway name: "*" (VirtualService default/a)',
      'error: g.yaml:23:11 spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh gateway (VirtualService default/b)',
    ]);
  });

  it('a missing Gateway is a warning; a gateway route to a service with several ports must name one; other rules stay', () => {
    const text = SERVICE + vs('ok', 'hosts: [shop.example.com]\ngateways: [istio-system/ingress]\nhttp: [{ route: [{ destination: { host: reviews, port: { number: 9080 } } }] }]') + vs('ambiguous', 'hosts: [x.example.com]\ngateways: [gw]\nhttp: [{ route: [{ destination: { host: reviews } }] }]');
    const state = compile(parseConfigText('g.yaml', text));
    expect(state.errors.map(formatIssue)).toEqual(['g.yaml:25:22 spec.http[0].route[0].destination.port: service reviews.default.svc.cluster.local has several ports; name one with destination.port.number (VirtualService default/ambiguous)']);
    expect(state.warnings.map(formatIssue)).toContain('g.yaml:16:14 spec.gateways[0]: Gateway istio-system/ingress does not exist (yet): nothing serves this rule there until it does (VirtualService default/ok)');
    expect(state.model.gatewayVirtualServices.map((v) => v.key)).toEqual(['default/ok']);
  });
});

describe('VirtualService bound to gateways and mesh', () => {
  it('a multi-port destination without a port is left out at gateways with a warning, and stays for sidecars', () => {
    const text = SERVICE + vs('both', 'hosts: [reviews]\ngateways: [gw, mesh]\nhttp: [{ route: [{ destination: { host: reviews } }] }]');
    const state = compile(parseConfigText('g.yaml', text));
    expect(state.errors).toEqual([]);
    expect(state.warnings.map(formatIssue)).toContain('g.yaml:17:22 spec.http[0].route[0].destination: the destination has several ports and names none: this route is left out at gateways (sidecars use the port they call); name one with destination.port.number (VirtualService default/both)');
    expect(state.model.gatewayVirtualServices.find((v) => v.key === 'default/both')!.routes).toEqual([]);
    expect(state.model.routeTables.filter((t) => t.routes.some((r) => r.name === 'default/both/0')).map((t) => t.port)).toEqual([9080, 9090]);
  });
});
