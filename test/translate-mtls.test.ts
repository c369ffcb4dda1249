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
