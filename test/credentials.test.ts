// credentialName: TLS certificates from Kubernetes Secrets (wire-level fake API server, real
// client-node informers) and from a credentials directory, served as SDS Secret resources on ADS
// (SotW and delta) only to gateways (node type router) of the Secret's namespace; rotation pushes
// the Secret alone; the served certificate and key work in a real TLS handshake; private keys never
// reach logs or the config dump; a broken Secret is left out and named.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { checkResource } from '../control-plane/envoy/check.ts';
import { credentialResources } from '../control-plane/credentials/secret-resources.ts';
import { CredentialStore } from '../control-plane/credentials/credential-store.ts';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { createCA, issueServingCert, type KeyAndCert } from '../control-plane/tls/certs.ts';
import { CLUSTER, SECRET } from '../control-plane/translate/type-urls.ts';
import { getJson, startAdmin } from './helpers/admin-http.ts';
import { FakeApiServer, type KubeObject } from './helpers/fake-apiserver.ts';
import { registration } from './helpers/kube-objects.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { decoded, deltaDecoded, RawAdsClient, RawDeltaClient, toStruct } from './helpers/raw-ads.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const teardown = new Teardown();
afterEach(() => teardown.run());

const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (bytes: unknown) => Buffer.from(String(bytes), 'base64').toString('utf8');
const router = (ns: string) => ({ id: `router~10.0.0.5~ingress-1.${ns}~${ns}.svc.cluster.local`, metadata: toStruct({ NAMESPACE: ns }) });
const sidecar = (ns: string) => ({ id: `sidecar~10.0.0.6~app-1.${ns}~${ns}.svc.cluster.local`, metadata: toStruct({ NAMESPACE: ns }) });

async function pki() {
  const ca = await createCA('credential test CA');
  const leaf = await issueServingCert(ca, { dnsNames: ['shop.example.com'] });
  const other = await issueServingCert(ca, { dnsNames: ['other.example.com'] });
  return { ca, leaf, other };
}

function tlsSecret(ns: string, name: string, pair: KeyAndCert, caPem?: string, type = 'kubernetes.io/tls'): KubeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, type, data: { 'tls.crt': b64(pair.certPem), 'tls.key': b64(pair.keyPem), ...(caPem ? { 'ca.crt': b64(caPem) } : {}) } };
}

describe('credential resources', () => {
  it('a kubernetes.io/tls Secret gives kubernetes://name and kubernetes://name-cacert, both valid for Envoy', async () => {
    const { ca, leaf } = await pki();
    const out = credentialResources({ namespace: 'shop', name: 'web', data: { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem } });
    if ('error' in out) throw new Error(out.error);
    expect(out.resources.map((r) => r.name)).toEqual(['kubernetes://web', 'kubernetes://web-cacert']);
    for (const r of out.resources) expect(checkResource(r)).toEqual([]);
  });

  it('generic keys (cert, key, cacert) as Istio reads them; a CA-only <name>-cacert Secret is that CA resource', async () => {
    const { ca, leaf } = await pki();
    const generic = credentialResources({ namespace: 'shop', name: 'client', data: { cert: leaf.certPem, key: leaf.keyPem, cacert: ca.certPem } });
    expect('resources' in generic && generic.resources.map((r) => r.name)).toEqual(['kubernetes://client', 'kubernetes://client-cacert']);
    const caOnly = credentialResources({ namespace: 'shop', name: 'web-cacert', data: { 'ca.crt': ca.certPem } });
    expect('resources' in caOnly && caOnly.resources.map((r) => r.name)).toEqual(['kubernetes://web-cacert']);
  });

  it('a key that does not match its certificate, an unparsable PEM or a missing half is refused, naming the field only', async () => {
    const { leaf, other } = await pki();
    const mismatch = credentialResources({ namespace: 'shop', name: 'web', data: { 'tls.crt': leaf.certPem, 'tls.key': other.keyPem } });
    expect(mismatch).toEqual({ error: 'tls.key does not match the certificate in tls.crt' });
    const garbage = credentialResources({ namespace: 'shop', name: 'web', data: { 'tls.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'tls.key': leaf.keyPem } });
    expect('error' in garbage && garbage.error).toMatch(/^tls\.crt: certificate 1 cannot be parsed/);
    expect(credentialResources({ namespace: 'shop', name: 'web', data: { 'tls.crt': leaf.certPem, 'tls.key': 'not a key' } })).toEqual({ error: 'tls.key cannot be parsed as a PEM private key' });
    expect(credentialResources({ namespace: 'shop', name: 'web', data: { 'tls.key': leaf.keyPem } })).toEqual({ error: 'has a private key (tls.key or key) but no certificate (tls.crt or cert)' });
  });
});

describe('credential store', () => {
  it('tells listeners only the namespaces whose resources changed, and nothing for the same content again', async () => {
    const { ca, leaf, other } = await pki();
    const store = new CredentialStore(silentLogger);
    const told: string[][] = [];
    store.onChange((ns) => told.push([...ns].sort()));
    const a = { namespace: 'a', name: 'web', data: { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem } };
    const b = { namespace: 'b', name: 'web', data: { 'tls.crt': other.certPem, 'tls.key': other.keyPem, 'ca.crt': ca.certPem } };
    store.set('kubernetes', [a, b]);
    await waitFor(() => told.length === 1);
    expect(told[0]).toEqual(['a', 'b']);
    expect([...store.secretsIn('b').keys()]).toEqual(['kubernetes://web', 'kubernetes://web-cacert']);
    store.set('kubernetes', [{ ...a }, { ...b }]);
    store.set('kubernetes', [a, { ...b, data: { ...b.data, 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem } }]);
    await waitFor(() => told.length === 2);
    expect(told[1]).toEqual(['b']);
    expect(await new Promise((r) => setTimeout(() => r(told.length), 50))).toBe(2);
  });
});

async function kubeControlPlane(api: FakeApiServer, logger = captureLogs('debug')): Promise<ControlPlane> {
  const cp = await startControlPlane({ kube: { configCluster: registration(api), syncTimeoutMs: 5000 }, xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logger: logger.logger });
  teardown.add(() => cp.stop());
  await waitFor(() => cp.cache.ready, { description: 'the cluster synced' });
  return cp;
}

function sotw(cp: ControlPlane): RawAdsClient {
  const c = new RawAdsClient(cp.xdsAddress, { 'grpc.use_local_subchannel_pool': 1 });
  teardown.add(() => c.close());
  return c;
}

describe('credentialName from Kubernetes Secrets', () => {
  it('a gateway of the Secret namespace gets its PEMs over SotW ADS; other namespaces and sidecars do not; a broken Secret is left out and named', async () => {
    const { ca, leaf, other } = await pki();
    const api = await FakeApiServer.start('primary');
    teardown.add(() => api.close());
    api.apply(tlsSecret('shop', 'web', leaf, ca.certPem));
    api.apply(tlsSecret('shop', 'broken', leaf)); // fixed below to a mismatched key
    api.apply({ ...tlsSecret('shop', 'broken', { ...leaf, keyPem: other.keyPem }) });
    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sa-token', namespace: 'shop' }, type: 'kubernetes.io/service-account-token', data: { 'ca.crt': b64(ca.certPem) } });
    const logs = captureLogs('debug');
    const cp = await kubeControlPlane(api, logs);
    const names = ['kubernetes://web', 'kubernetes://web-cacert', 'kubernetes://broken', 'kubernetes://sa-token-cacert'];
    await waitFor(() => cp.credentials.size > 0, { description: 'Secrets read' });

    const gw = sotw(cp);
    gw.send({ node: router('shop'), type_url: SECRET, resource_names: names });
    const r = await gw.next();
    expect(r.type_url).toBe(SECRET);
    const got = decoded(r);
    expect(got.map((x) => x.name)).toEqual(['kubernetes://web', 'kubernetes://web-cacert']);
    const cert = got[0]!.tls_certificate as any;
    expect(text(cert.certificate_chain.inline_bytes)).toBe(leaf.certPem);
    expect(text(cert.private_key.inline_bytes)).toBe(leaf.keyPem);
    expect(text((got[1]!.validation_context as any).trusted_ca.inline_bytes)).toBe(ca.certPem);

    // The broken one is named (namespace/name and why) in health and logs, never with its content.
    expect(cp.credentials.health()).toEqual([{ name: 'credential/shop/broken', ready: true, healthy: false, detail: 'left out: tls.key does not match the certificate in tls.crt' }]);
    expect(logs.lines.some((l) => l.credential === 'shop/broken' && /does not match/.test(l.error))).toBe(true);
    const allLogs = JSON.stringify(logs.lines);
    for (const secretText of [leaf.keyPem, other.keyPem, b64(leaf.keyPem)]) expect(allLogs).not.toContain(secretText.slice(40, 100));

    const stranger = sotw(cp);
    stranger.send({ node: router('elsewhere'), type_url: SECRET, resource_names: names });
    const side = sotw(cp);
    side.send({ node: sidecar('shop'), type_url: SECRET, resource_names: names });
    expect(await stranger.quiet(500)).toBe(true);
    expect(await side.quiet(100)).toBe(true);
    // Delta: a gateway of another namespace is told the name does not exist, and given nothing.
    const deltaStranger = new RawDeltaClient(cp.xdsAddress, { 'grpc.use_local_subchannel_pool': 1 });
    teardown.add(() => deltaStranger.close());
    deltaStranger.send({ node: router('elsewhere'), type_url: SECRET, resource_names_subscribe: ['kubernetes://web'] });
    const none = await deltaStranger.next();
    expect(none.resources).toEqual([]);
    expect(none.removed_resources).toEqual(['kubernetes://web']);

    // Fixed, the broken one is served and no longer reported.
    api.apply(tlsSecret('shop', 'broken', other));
    await waitFor(() => cp.credentials.health().length === 0, { description: 'the fixed Secret recovers' });
    gw.send({ type_url: SECRET, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
    const fixed = await gw.next();
    expect(decoded(fixed).map((x) => x.name)).toEqual(['kubernetes://broken', 'kubernetes://web', 'kubernetes://web-cacert']);
  });

  it('a Secret update reaches a subscribed stream as the Secret alone (no cluster push); delta streams too; the served pair completes a real TLS handshake', async () => {
    const { ca, leaf } = await pki();
    const rotated = await issueServingCert(ca, { dnsNames: ['shop.example.com'] });
    const api = await FakeApiServer.start('primary');
    teardown.add(() => api.close());
    api.apply(tlsSecret('shop', 'web', leaf, ca.certPem));
    const cp = await kubeControlPlane(api);
    await waitFor(() => cp.credentials.size === 2, { description: 'Secret read' });

    const gw = sotw(cp);
    gw.send({ node: router('shop'), type_url: CLUSTER });
    const cds = await gw.next();
    gw.send({ type_url: CLUSTER, version_info: cds.version_info, response_nonce: cds.nonce });
    gw.send({ type_url: SECRET, resource_names: ['kubernetes://web', 'kubernetes://web-cacert'] });
    const first = await gw.next();
    gw.send({ type_url: SECRET, resource_names: ['kubernetes://web', 'kubernetes://web-cacert'], version_info: first.version_info, response_nonce: first.nonce });

    const delta = new RawDeltaClient(cp.xdsAddress, { 'grpc.use_local_subchannel_pool': 1 });
    teardown.add(() => delta.close());
    delta.send({ node: router('shop'), type_url: SECRET, resource_names_subscribe: ['kubernetes://web'] });
    const d1 = await delta.next();
    expect(deltaDecoded(d1).map((x) => x.name)).toEqual(['kubernetes://web']);
    delta.send({ type_url: SECRET, response_nonce: d1.nonce });

    // The served certificate and key, and the served CA, make a working TLS connection.
    const [cert, caRes] = decoded(first);
    await handshake(text((cert!.tls_certificate as any).certificate_chain.inline_bytes), text((cert!.tls_certificate as any).private_key.inline_bytes), text((caRes!.validation_context as any).trusted_ca.inline_bytes));

    api.apply(tlsSecret('shop', 'web', rotated, ca.certPem));
    const next = await gw.next();
    expect(next.type_url).toBe(SECRET);
    expect(decoded(next).map((x) => x.name)).toEqual(['kubernetes://web', 'kubernetes://web-cacert']);
    expect(text((decoded(next)[0]!.tls_certificate as any).certificate_chain.inline_bytes)).toBe(rotated.certPem);
    gw.send({ type_url: SECRET, resource_names: ['kubernetes://web', 'kubernetes://web-cacert'], version_info: next.version_info, response_nonce: next.nonce });
    const d2 = await delta.next();
    expect(d2.type_url).toBe(SECRET);
    expect(text((deltaDecoded(d2)[0]!.tls_certificate as any).private_key.inline_bytes)).toBe(rotated.keyPem);
    expect(await gw.quiet(300)).toBe(true); // no cluster (or anything else) pushed for a Secret change
  });

  it('the config dump shows Secrets with the private key redacted', async () => {
    const { ca, leaf } = await pki();
    const api = await FakeApiServer.start('primary');
    teardown.add(() => api.close());
    api.apply(tlsSecret('shop', 'web', leaf, ca.certPem));
    const cp = await kubeControlPlane(api);
    await waitFor(() => cp.credentials.size === 2, { description: 'Secret read' });
    const gw = sotw(cp);
    gw.send({ node: router('shop'), type_url: SECRET, resource_names: ['kubernetes://web'] });
    await gw.next();
    const admin = await startAdmin(teardown, cp);
    const dump = await getJson(`${admin}/debug/config_dump?proxy=${encodeURIComponent(router('shop').id)}`);
    const body = JSON.stringify(dump.body);
    const secret = dump.body.types.sds.resources[0].resource;
    expect(secret.tls_certificate.private_key).toEqual({ inline_string: '[redacted]' });
    expect(text(secret.tls_certificate.certificate_chain.inline_bytes)).toBe(leaf.certPem);
    expect(body).not.toContain(b64(leaf.keyPem).slice(0, 60));
    expect(body).not.toContain('PRIVATE KEY');
  });
});

describe('credentialName from a credentials directory', () => {
  it('DIR/<namespace>/<name>/ is served to gateways of that namespace and re-read when it changes', async () => {
    const { ca, leaf } = await pki();
    const rotated = await issueServingCert(ca, { dnsNames: ['shop.example.com'] });
    const dir = await mkdtemp(path.join(tmpdir(), 'meshpilot-creds-'));
    teardown.add(() => rm(dir, { recursive: true, force: true }));
    const rules = path.join(dir, 'rules');
    const creds = path.join(dir, 'creds');
    await mkdir(rules);
    await mkdir(path.join(creds, 'shop', 'web'), { recursive: true });
    const write = async (pair: KeyAndCert) => {
      await writeFile(path.join(creds, 'shop', 'web', 'tls.crt'), pair.certPem);
      await writeFile(path.join(creds, 'shop', 'web', 'tls.key'), pair.keyPem);
    };
    await write(leaf);
    const cp = await startControlPlane({ configDir: rules, credentialsDir: creds, xdsListen: '127.0.0.1:0', adminListen: null, debounceMs: 20, logLevel: 'silent' });
    teardown.add(() => cp.stop());
    const gw = sotw(cp);
    gw.send({ node: router('shop'), type_url: SECRET, resource_names: ['kubernetes://web'] });
    const r = await gw.next();
    expect(text((decoded(r)[0]!.tls_certificate as any).certificate_chain.inline_bytes)).toBe(leaf.certPem);
    gw.send({ type_url: SECRET, resource_names: ['kubernetes://web'], version_info: r.version_info, response_nonce: r.nonce });
    await write(rotated);
    const next = await gw.next(5000);
    expect(text((decoded(next)[0]!.tls_certificate as any).private_key.inline_bytes)).toBe(rotated.keyPem);
  });
});

/** A TLS server with `certPem`/`keyPem`, a client trusting `caPem`: resolves once the client verified the server. */
async function handshake(certPem: string, keyPem: string, caPem: string): Promise<void> {
  const server = tls.createServer({ cert: certPem, key: keyPem }, (s) => s.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  const reply = await new Promise<string>((resolve, reject) => {
    const c = tls.connect({ host: '127.0.0.1', port, servername: 'shop.example.com', ca: caPem }, () => {
      if (!c.authorized) reject(new Error(`not authorized: ${c.authorizationError}`));
    });
    let data = '';
    c.on('data', (d) => (data += d));
    c.on('end', () => resolve(data));
    c.on('error', reject);
  });
  expect(reply).toBe('hello');
}
