// Envoy's side of the agent: a raw SDS client (grpc-js over the agent's Unix socket) subscribes to
// `default` and `ROOTCA`, ACKs, and gets a new version pushed when the certificate renews.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../control-plane/agent/agent.ts';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { SECRET_TYPE_URL, secretJson } from '../control-plane/agent/sds-secrets.ts';
import type { SdsRequest, SdsResponse } from '../control-plane/agent/sds-server.ts';
import { checkResource, decodeResource } from '../control-plane/envoy/check.ts';
import { PROTO_INCLUDE_DIRS } from '../control-plane/envoy/protos.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { startTestCa } from './helpers/test-ca.ts';
import { waitFor } from './helpers/wait.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type SdsClient = grpc.Client & { StreamSecrets(): grpc.ClientDuplexStream<SdsRequest, SdsResponse> };
function sdsClient(socket: string): SdsClient {
  const def = protoLoader.loadSync('envoy/service/secret/v3/sds.proto', { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return new pkg.envoy.service.secret.v3.SecretDiscoveryService(`unix:${socket}`, grpc.credentials.createInsecure());
}

/** One StreamSecrets stream with its responses queued. */
function subscribe(client: SdsClient, names: string[]) {
  const call = client.StreamSecrets();
  const got: SdsResponse[] = [];
  call.on('data', (r: SdsResponse) => got.push(r));
  call.on('error', () => {});
  call.write({ node: { id: 'sidecar~10.0.0.9~reviews-1.shop~shop.svc.cluster.local' }, type_url: SECRET_TYPE_URL, resource_names: names });
  return {
    got,
    ack: (r: SdsResponse) => call.write({ type_url: SECRET_TYPE_URL, resource_names: names, version_info: r.version_info, response_nonce: r.nonce }),
    end: () => call.cancel(),
  };
}

describe('agent SDS', () => {
  it('serves default and ROOTCA on the Unix socket and pushes a new version after each renewal', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-sds-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const ca = await startTestCa({ tokens: new Map([['t', 'shop/reviews']]), maxTtlSeconds: 4 });
    cleanups.push(() => ca.stop());
    fs.writeFileSync(path.join(dir, 'token'), 't');
    const socket = path.join(dir, 'run', 'sds.sock');
    const outDir = path.join(dir, 'certs');
    const agent = await startAgent({
      identity: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'reviews' },
      ca: { address: ca.address, caRootPem: ca.rootPem, tokenFile: path.join(dir, 'token') },
      outDir,
      validitySeconds: 3600,
      sdsSocket: socket,
      logger: captureLogs().logger,
      backoff: { initialMs: 100, maxMs: 400 },
    });
    cleanups.push(() => agent.stop());
    expect(fs.statSync(socket).isSocket()).toBe(true);

    const client = sdsClient(socket);
    cleanups.push(() => client.close());
    // Envoy opens one stream per secret.
    const cert = subscribe(client, ['default']);
    const root = subscribe(client, ['ROOTCA']);
    cleanups.push(() => {
      cert.end();
      root.end();
    });
    await waitFor(() => cert.got.length >= 1 && root.got.length >= 1, { description: 'first answers' });

    const decode = (r: SdsResponse) => r.resources.map((a) => decodeResource(a) as any);
    const [c1] = decode(cert.got[0]!);
    const [r1] = decode(root.got[0]!);
    const files = certFilePaths(outDir);
    expect(cert.got[0]!.type_url).toBe(SECRET_TYPE_URL);
    expect(c1.name).toBe('default');
    expect(c1.tls_certificate.certificate_chain.inline_string).toBe(fs.readFileSync(files.certificateFile, 'utf8'));
    expect(c1.tls_certificate.private_key.inline_string).toBe(fs.readFileSync(files.privateKeyFile, 'utf8'));
    expect(decode(cert.got[0]!)).toHaveLength(1);
    expect(r1.name).toBe('ROOTCA');
    expect(r1.validation_context.trusted_ca.inline_string.trim()).toBe(ca.rootPem.trim());
    const firstSerial = new X509Certificate(c1.tls_certificate.certificate_chain.inline_string).serialNumber;

    // ACK, then wait for the renewal push on both streams.
    cert.ack(cert.got[0]!);
    root.ack(root.got[0]!);
    await waitFor(() => cert.got.length >= 2 && root.got.length >= 2, { timeoutMs: 15_000, description: 'pushes after renewal' });
    const [c2] = decode(cert.got[1]!);
    expect(cert.got[1]!.version_info).not.toBe(cert.got[0]!.version_info);
    expect(cert.got[1]!.nonce).not.toBe(cert.got[0]!.nonce);
    const secondSerial = new X509Certificate(c2.tls_certificate.certificate_chain.inline_string).serialNumber;
    expect(secondSerial).not.toBe(firstSerial);
    expect(secondSerial).toBe(agent.certs.current()!.cert.serial);
    expect(decode(root.got[1]!)[0].name).toBe('ROOTCA');

    // A new stream (Envoy reconnecting with the version it has) gets the current version.
    const again = subscribe(client, ['default', 'ROOTCA']);
    cleanups.push(() => again.end());
    await waitFor(() => again.got.length >= 1, { description: 'answer on a new stream' });
    expect(decode(again.got[0]!).map((s) => s.name).sort()).toEqual(['ROOTCA', 'default']);
  });

  it('generates secrets that pass Envoy\'s schema check', async () => {
    const cur = { keyPem: '-----BEGIN PRIVATE KEY-----\nMA==\n-----END PRIVATE KEY-----\n', cert: { chainPem: 'chain', roots: ['root-a', 'root-b'] } } as any;
    for (const name of ['default', 'ROOTCA']) expect(checkResource(secretJson(name, cur)!)).toEqual([]);
    // The check can fail: a misspelled field is a violation.
    expect(checkResource({ ...secretJson('default', cur)!, tls_certificat: {} }).length).toBeGreaterThan(0);
    expect(secretJson('ROOTCA', cur)!.validation_context).toEqual({ trusted_ca: { inline_string: 'root-a\nroot-b\n' } });
  });
});
