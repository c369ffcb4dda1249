// mTLS config as the two data planes take it: every gRPC Listener and Cluster of the mtls golden
// cases goes through grpc-js-xds's own decoders (what it would NACK), and the Envoy side is
// checked for the meaning of its filter chains.
import './helpers/xds-rbac-env.ts'; // before grpc-js-xds is loaded: RBAC filters in the listeners
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { compile } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { CLUSTER, LISTENER } from '../control-plane/translate/type-urls.ts';
import { grpcRejects } from './helpers/grpc-decode.ts';
import { checkResource } from '../control-plane/envoy/check.ts';

const IN = path.join('test', 'golden', 'in');
const grpcServer = proxyFromNode({ id: 'sidecar~10.0.0.10~reviews-v2-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', GENERATOR: 'grpc', LABELS: { app: 'reviews', version: 'v2' } } });

function modelOf(file: string) {
  return compile(parseConfigText(file, fs.readFileSync(file, 'utf8'))).model;
}

describe('gRPC takes the mTLS config', () => {
  const cases = fs.readdirSync(IN).filter((f) => f.startsWith('mtls-') && f.endsWith('.yaml'));
  it('has cases', () => expect(cases.length).toBeGreaterThan(0));
  for (const c of cases) {
    it(`${c}: no Listener or Cluster that grpc-js-xds 1.14.1 would NACK (bootstrap with provider "default")`, () => {
      const res = translate(modelOf(path.join(IN, c)), grpcServer);
      const all = [...res[LISTENER], ...res[CLUSTER]];
      expect(all.map((r) => [r.name, grpcRejects(r)]).filter(([, e]) => e)).toEqual([]);
    });
  }

  it('a STRICT server listener is NACKed by a client without the provider: the bootstrap must have it', () => {
    const res = translate(modelOf(path.join(IN, 'mtls-inbound-modes.yaml')), grpcServer);
    const strict = res[LISTENER].find((l) => l.name === 'xds.istio.io/grpc/lds/inbound/10.0.0.10:9080')!;
    expect(grpcRejects(strict, [])).toMatch(/Unmatched .*instance_name: default/);
  });
});

describe('Envoy inbound under STRICT', () => {
  const sidecar = proxyFromNode({ id: 'sidecar~10.0.0.9~productpage-v1-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage' } } });
  const mesh = (mode: string) =>
    compile(
      parseConfigText(
        'm.yaml',
        `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: pp, namespace: default }\nspec: { hosts: [pp.default.svc.cluster.local], location: MESH_INTERNAL, resolution: STATIC, ports: [{ number: 9080, name: http, protocol: HTTP }], endpoints: [{ address: 10.0.0.9, labels: { app: productpage }, serviceAccount: pp }] }\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: d, namespace: default }\nspec: { mtls: { mode: ${mode} } }\n`,
      ),
    ).model;
  const chains = (mode: string) => {
    const vi = translate(mesh(mode), sidecar)[LISTENER].find((l) => l.name === 'virtualInbound')!;
    expect(checkResource(vi)).toEqual([]); // Envoy's schema
    return vi.filter_chains as Array<{ name: string; transport_socket?: unknown; filter_chain_match?: Record<string, unknown> }>;
  };

  it('every chain, the passthrough one for unnamed ports included, takes mTLS only', () => {
    const strict = chains('STRICT');
    expect(strict.map((c) => [c.name, !!c.transport_socket, c.filter_chain_match?.transport_protocol])).toEqual([
      ['inbound|9080||', true, undefined],
      ['virtualInbound-catchall-tcp', true, undefined],
    ]);
    // PERMISSIVE: the named port takes both; the passthrough stays plaintext (bytes as they come).
    expect(chains('PERMISSIVE').map((c) => [c.name, !!c.transport_socket, c.filter_chain_match?.transport_protocol])).toEqual([
      ['inbound|9080||', true, 'tls'],
      ['inbound|9080||-plaintext', false, 'raw_buffer'],
      ['virtualInbound-catchall-tcp', false, undefined],
    ]);
  });
});

describe('a control plane whose workloads hold no certificates (no mesh CA)', () => {
  const sidecar = proxyFromNode({ id: 'sidecar~10.0.0.9~productpage-v1-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage' } } });
  const yaml = (policy: string) =>
    `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: pp, namespace: default }\nspec: { hosts: [pp.default.svc.cluster.local], location: MESH_INTERNAL, resolution: STATIC, ports: [{ number: 9080, name: http, protocol: HTTP }], endpoints: [{ address: 10.0.0.9, labels: { app: productpage }, serviceAccount: pp }] }\n${policy}`;
  const tlsIn = (text: string, certificates: boolean) => {
    const model = compile(parseConfigText('m.yaml', text), [], undefined, { trustDomain: 'cluster.local', rootNamespace: 'istio-system', certificates }).model;
    const res = translate(model, sidecar);
    return JSON.stringify([...res[CLUSTER], ...res[LISTENER]]).includes('tls_context');
  };

  it('gets no TLS by default (no PERMISSIVE chains, no automatic mTLS), where a CA would give it', () => {
    expect(tlsIn(yaml(''), true)).toBe(true);
    expect(tlsIn(yaml(''), false)).toBe(false);
  });

  it('still follows a rule that asks for mTLS', () => {
    expect(tlsIn(yaml('---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: d, namespace: default }\nspec: { mtls: { mode: STRICT } }\n'), false)).toBe(true);
  });
});
