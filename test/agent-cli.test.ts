// `meshpilot agent` as a pod runs it (a child process, identity from the downward-API env): it gets
// its certificate, serves SDS, writes a gRPC bootstrap that grpc-js-xds's own parser accepts, and
// stops cleanly on SIGTERM.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
// The library's own bootstrap parser: what a proxyless client would do with our file.
import { validateBootstrapConfig } from '@grpc/grpc-js-xds/build/src/xds-bootstrap.js';
import { grpcBootstrap } from '../control-plane/agent/grpc-bootstrap.ts';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { startTestCa } from './helpers/test-ca.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = path.resolve('bin/meshpilot.js');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('meshpilot agent', () => {
  it('issues, writes a gRPC bootstrap naming the files, serves SDS and exits 0 on SIGTERM', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-agent-cli-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const ca = await startTestCa({ tokens: new Map([['pod-token', 'shop/reviews']]), maxTtlSeconds: 3600 });
    cleanups.push(() => ca.stop());
    fs.writeFileSync(path.join(dir, 'token'), 'pod-token');
    fs.writeFileSync(path.join(dir, 'ca-root.pem'), ca.rootPem);
    const outDir = path.join(dir, 'certs');
    const socket = path.join(dir, 'sds.sock');
    const bootstrapFile = path.join(dir, 'grpc-bootstrap.json');
    const child = spawn(process.execPath, [
      BIN, 'agent',
      '--ca-address', ca.address, '--ca-root', path.join(dir, 'ca-root.pem'), '--token-file', path.join(dir, 'token'),
      '--out-dir', outDir, '--sds-socket', socket,
      '--grpc-bootstrap', bootstrapFile, '--xds-address', 'meshpilot.meshpilot-system.svc:15010', '--xds-channel-creds', 'insecure',
      '--labels', '{"app":"reviews","version":"v1"}',
    ], {
      env: { ...process.env, MESHPILOT_POD_NAMESPACE: 'shop', MESHPILOT_SERVICE_ACCOUNT: 'reviews', MESHPILOT_POD_IP: '10.0.0.9', MESHPILOT_POD_NAME: 'reviews-1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });

    const files = certFilePaths(outDir);
    await waitFor(() => fs.existsSync(files.certificateFile), { timeoutMs: 20_000, description: `certificate written; output: ${output}` });
    expect(new X509Certificate(fs.readFileSync(files.certificateFile)).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/reviews');
    expect(fs.statSync(socket).isSocket()).toBe(true);

    const bootstrap = JSON.parse(fs.readFileSync(bootstrapFile, 'utf8'));
    const parsed = validateBootstrapConfig(bootstrap);
    expect(parsed.node.id).toBe('sidecar~10.0.0.9~reviews-1.shop~shop.svc.cluster.local');
    expect(bootstrap.node.metadata).toEqual({ GENERATOR: 'grpc', NAMESPACE: 'shop', LABELS: { app: 'reviews', version: 'v1' }, SERVICE_ACCOUNT: 'reviews' });
    expect(parsed.certificateProviders).toEqual({
      default: {
        pluginName: 'file_watcher',
        config: { certificateFile: files.certificateFile, privateKeyFile: files.privateKeyFile, caCertificateFile: files.caCertificateFile, refreshIntervalMs: 5000 },
      },
    });
    // Every file the bootstrap names exists.
    for (const f of Object.values(bootstrap.certificate_providers.default.config).filter((v) => typeof v === 'string' && v.startsWith('/'))) {
      expect(fs.existsSync(f as string), f as string).toBe(true);
    }

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(fs.existsSync(socket)).toBe(false);
    expect(output).toContain('agent: stopped');
  });

  it('writes gRFC A65 tls channel creds by default, which grpc-js-xds 1.14.1 does not accept', () => {
    const files = certFilePaths('/var/run/meshpilot/certs');
    const input = { xdsAddress: 'meshpilot:15010', files, nodeId: 'sidecar~10.0.0.9~a.shop~shop.svc.cluster.local', namespace: 'shop', labels: {} };
    const tls = grpcBootstrap({ ...input, creds: 'tls' }) as any;
    expect(tls.xds_servers[0].channel_creds).toEqual([{ type: 'tls', config: { ca_certificate_file: files.caCertificateFile, certificate_file: files.certificateFile, private_key_file: files.privateKeyFile } }]);
    // Pinned library fact: when this starts passing, grpc-js-xds learned `tls` and the README can say so.
    expect(() => validateBootstrapConfig(tls)).toThrow(/channel_creds.*google_default,insecure/);
    expect(() => validateBootstrapConfig(grpcBootstrap({ ...input, creds: 'insecure' }))).not.toThrow();
  });
});
