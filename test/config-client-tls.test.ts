// DestinationRule tls: what is refused (with positions) and what the model makes of it, auto mTLS
// included (the translation itself is recorded by the mtls-* golden cases).
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';
import { compile } from '../control-plane/model/compile.ts';
import { ModelMemo } from '../control-plane/model/build.ts';

function dr(tls: string, where = 'trafficPolicy'): string {
  return `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: r, namespace: default }\nspec:\n  host: reviews\n  ${where}:\n    tls: ${tls}\n`;
}

const errorsOf = (text: string) => parseConfigText('dr.yaml', text).errors.map(formatError);

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.0.0.1, labels: { app: reviews }, serviceAccount: reviews }]
---
`;

describe('DestinationRule tls schema', () => {
  it('MUTUAL needs a client certificate and key, or a credentialName, which excludes the file paths (as Istio)', () => {
    expect(errorsOf(dr('{ mode: MUTUAL }'))).toEqual([
      'dr.yaml:7:5 spec.trafficPolicy.tls.clientCertificate: MUTUAL needs clientCertificate (or credentialName) (DestinationRule default/r)',
      'dr.yaml:7:5 spec.trafficPolicy.tls.privateKey: MUTUAL needs privateKey (or credentialName) (DestinationRule default/r)',
    ]);
    expect(errorsOf(dr('{ mode: SIMPLE, credentialName: my-secret }'))).toEqual([]);
    expect(errorsOf(dr('{ mode: MUTUAL, credentialName: my-secret, sni: api.example.com }'))).toEqual([]);
    expect(errorsOf(dr('{ mode: MUTUAL, credentialName: my-secret, caCertificates: /ca.pem }'))).toEqual([
      expect.stringMatching(/^dr\.yaml:7:69 spec\.trafficPolicy\.tls\.caCertificates: cannot be set with credentialName \(the Secret holds the certificates\)/),
    ]);
    expect(errorsOf(dr('{ mode: ISTIO_MUTUAL, credentialName: my-secret }'))).toEqual([expect.stringMatching(/tls\.credentialName: cannot be set with mode ISTIO_MUTUAL/)]);
  });

  it('ISTIO_MUTUAL takes no certificate files; unknown modes and fields are errors', () => {
    expect(errorsOf(dr('{ mode: ISTIO_MUTUAL, caCertificates: /x.pem }'))).toEqual([expect.stringMatching(/tls\.caCertificates: cannot be set with mode ISTIO_MUTUAL/)]);
    expect(errorsOf(dr('{ mode: STRICT }'))).toEqual([expect.stringMatching(/tls\.mode: must be one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL \(got "STRICT"\)/)]);
    expect(errorsOf(dr('{ mode: SIMPLE, insecureSkipVerify: true, caCertificates: /ca.pem }'))).toEqual([expect.stringMatching(/tls\.caCertificates: cannot be set with insecureSkipVerify: true/)]);
    expect(errorsOf(dr('{ mode: SIMPLE, verify: true }'))).toEqual([expect.stringMatching(/tls\.verify: field not supported by meshpilot/)]);
  });
});

describe('outbound TLS in the model', () => {
  const tlsOf = (text: string) => compile(parseConfigText('dr.yaml', text)).model.clusters.find((c) => c.name === 'outbound|9080||reviews.default.svc.cluster.local')!.tls;

  it('auto mTLS: an in-mesh destination gets ISTIO_MUTUAL verifying its service account', () => {
    expect(tlsOf(SERVICE)).toEqual({ mode: 'ISTIO_MUTUAL', source: 'auto', sni: 'outbound_.9080_._.reviews.default.svc.cluster.local', subjectAltNames: ['spiffe://cluster.local/ns/default/sa/reviews'] });
  });

  it('no auto mTLS to a destination whose mode is DISABLE, or without a service account', () => {
    const off = `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: off, namespace: default }\nspec: { selector: { matchLabels: { app: reviews } }, portLevelMtls: { "9080": { mode: DISABLE } } }\n`;
    expect(tlsOf(SERVICE + off)).toBeUndefined();
    expect(tlsOf(SERVICE.replace(', serviceAccount: reviews', ''))).toBeUndefined();
  });

  it('on a GRPC port auto mTLS needs STRICT (a proxyless server under PERMISSIVE takes plaintext only)', () => {
    const grpc = SERVICE.replace('name: http, protocol: HTTP', 'name: grpc, protocol: GRPC');
    expect(tlsOf(grpc)).toBeUndefined();
    const strict = `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: s, namespace: default }\nspec: { mtls: { mode: STRICT } }\n`;
    expect(tlsOf(grpc + strict)?.mode).toBe('ISTIO_MUTUAL');
  });

  it('the rule wins over auto mTLS: DISABLE means plaintext, SIMPLE keeps its own SANs', () => {
    expect(tlsOf(SERVICE + dr('{ mode: DISABLE }'))).toBeUndefined();
    expect(tlsOf(SERVICE + dr('{ mode: SIMPLE, subjectAltNames: [reviews.example] }'))).toEqual({ mode: 'SIMPLE', source: 'rule', subjectAltNames: ['reviews.example'] });
  });

  it('a PeerAuthentication edit reaches clusters built before it (the memo does not keep stale auto mTLS)', () => {
    const memo = new ModelMemo();
    const first = parseConfigText('dr.yaml', SERVICE);
    const cluster = (m: ReturnType<typeof compile>['model']) => m.clusters.find((c) => c.name === 'outbound|9080||reviews.default.svc.cluster.local')!;
    expect(cluster(compile(first, [], memo).model).tls?.mode).toBe('ISTIO_MUTUAL');
    const off = `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: off, namespace: default }\nspec: { mtls: { mode: DISABLE } }\n`;
    // The ServiceEntry object is the same instance (as the file source keeps it); only the policy is new.
    const second = { ...first, objects: [...first.objects, ...parseConfigText('pa.yaml', off).objects] };
    const incremental = compile(second, first.objects, memo).model;
    expect(cluster(incremental).tls).toBeUndefined();
    expect(incremental.clusters).toEqual(compile(second).model.clusters);
  });

  it('the trust domain is an input', () => {
    const m = compile(parseConfigText('dr.yaml', SERVICE), [], undefined, { trustDomain: 'example.org', rootNamespace: 'istio-system' }).model;
    expect(m.clusters[0]!.tls?.subjectAltNames).toEqual(['spiffe://example.org/ns/default/sa/reviews']);
  });
});
