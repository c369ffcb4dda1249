// Shared by the identity end-to-end tests: a control plane running the mesh CA (file mode, bootstrap
// tokens), real `meshpilot agent`s (in-process) fetching and renewing certificates, and
// grpc-js-xds peers reading the agents' files with gRPC's file_watcher provider.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { expect } from 'vitest';
import { startAgent, type RunningAgent } from '../../control-plane/agent/agent.ts';
import { certFilePaths } from '../../control-plane/agent/cert-files.ts';
import { grpcBootstrap } from '../../control-plane/agent/grpc-bootstrap.ts';
import { captureLogs } from './log-capture.ts';
import { ISTIO_MUTUAL, ONLY_PRODUCTPAGE, peerAuth, ratingsEntry } from './mtls-rules.ts';
import { startTestMesh, type Teardown, type TestMesh } from './test-mesh.ts';
import { reserveLoopbackPort, startXdsEchoServer } from './xds-server.ts';

export const TD = 'cluster.local';

export interface Workload {
  sa: string;
  agent: RunningAgent;
  /** Serials of every certificate the agent put in its files, in order. */
  serials: string[];
  /** Bootstrap `certificate_providers` reading the agent's files (file_watcher, every 1 s). */
  providers: Record<string, unknown>;
  /** The agent's log lines (parsed JSON). */
  logs: Array<Record<string, any>>;
}

export async function startWorkload(teardown: Teardown, dir: string, sa: string, caAddress: string, bundle: string, outName = `${sa}-certs`): Promise<Workload> {
  const tokenFile = path.join(dir, `${sa}.token`);
  fs.writeFileSync(tokenFile, `token-${sa}\n`);
  const outDir = path.join(dir, outName);
  const logs = captureLogs();
  const agent = await startAgent({
    identity: { trustDomain: TD, namespace: 'default', serviceAccount: sa },
    ca: { address: caAddress, caRootPem: bundle, tokenFile },
    outDir,
    validitySeconds: 3600, // the CA caps it at CERT_TTL_MS
    logger: logs.logger,
    backoff: { initialMs: 100, maxMs: 400 },
  });
  teardown.add(() => agent.stop());
  const serials: string[] = [];
  agent.certs.on('cert', (c) => serials.push(c.cert.serial));
  // Bounded: an agent that cannot reach the CA would otherwise wait until the test's own timeout.
  const first = await Promise.race([agent.certs.ready(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${sa}: no certificate from the CA within 15 s`)), 15_000).unref())]);
  if (!serials.includes(first.cert.serial)) serials.unshift(first.cert.serial);
  // The same provider block the agent writes into a proxyless app's bootstrap (--grpc-bootstrap).
  const providers = grpcBootstrap({ xdsAddress: '', creds: 'insecure', files: certFilePaths(outDir), nodeId: '', namespace: 'default', labels: {}, refreshSeconds: 1 }).certificate_providers as Record<string, unknown>;
  return { sa, agent, serials, providers, logs: logs.lines };
}

/** A mesh whose control plane runs the CA (root kept in `<dir>/ca`) with ratings on `port`. */
export async function startIdentityMesh(teardown: Teardown, certTtlMs: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-e2e-identity-'));
  teardown.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tokens = path.join(dir, 'ca-tokens');
  fs.writeFileSync(tokens, ['productpage', 'ratings', 'reviews'].map((sa) => `token-${sa} default ${sa}`).join('\n') + '\n', { mode: 0o600 });
  const xdsTls = { dir: path.join(dir, 'ca'), tokensFile: tokens, workloadCertTtlMs: certTtlMs };
  const port = await reserveLoopbackPort();
  const mesh = await startTestMesh(teardown, {
    backends: [],
    prefix: 'identity',
    files: { 'ratings.yaml': ratingsEntry(port), 'mtls.yaml': `${peerAuth('STRICT')}---\n${ISTIO_MUTUAL}---\n${ONLY_PRODUCTPAGE}` },
    controlPlane: { xdsTls, xdsPlaintextListen: '127.0.0.1:0' },
  });
  expect(mesh.cp.state().errors, 'rule errors').toEqual([]);
  expect(mesh.cp.xdsPlaintextAddress).toBeDefined();
  const bundle = fs.readFileSync(mesh.cp.ca!.trustBundlePath, 'utf8');
  return { dir, xdsTls, port, mesh, bundle };
}

export async function startRatingsServer(teardown: Teardown, mesh: TestMesh, port: number, ratings: Workload) {
  const server = await startXdsEchoServer({
    xdsAddress: mesh.cp.xdsPlaintextAddress!,
    service: 'ratings',
    version: 'v1',
    port,
    certificateProviders: ratings.providers,
    credentials: new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
  });
  teardown.add(() => server.stop());
  return server;
}

/** A proxyless client of `mesh` running as `w` (mTLS through its agent's files unless `tls: false`). */
export function clientOf(mesh: TestMesh, w: Workload, opts: { tls?: boolean; nodeId?: string; ownConnections?: boolean } = {}) {
  return mesh.client({
    labels: { app: w.sa, version: 'v1' },
    serviceAccount: w.sa,
    certificateProviders: w.providers,
    credentials: opts.tls === false ? grpc.credentials.createInsecure() : new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()),
    ...(opts.nodeId ? { nodeId: opts.nodeId } : {}),
    ...(opts.ownConnections ? { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } } : {}),
  });
}

/** The PEM blocks of a file's text. */
export const pemBlocks = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

/** Whether the chain (leaf first) verifies link by link up to a certificate of the bundle. */
export function chainVerifies(chainPem: string, bundlePem: string): boolean {
  const chain = pemBlocks(chainPem).map((p) => new X509Certificate(p));
  const roots = pemBlocks(bundlePem).map((p) => new X509Certificate(p));
  if (chain.length === 0 || roots.length === 0) return false;
  for (let i = 0; i + 1 < chain.length; i++) if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) return false;
  const top = chain[chain.length - 1]!;
  return roots.some((r) => (top.fingerprint256 === r.fingerprint256) || (top.checkIssued(r) && top.verify(r.publicKey)));
}


/**
 * Counts calls of a loop that must never fail: each result is either an error or a reply whose
 * server saw `peer` as the caller's SPIFFE ID; anything else fails the test at once, listing why.
 */
export class CallTally {
  calls = 0;
  readonly failures: string[] = [];

  constructor(private readonly peer: string) {}

  add(results: ReadonlyArray<{ request_headers: Record<string, string | undefined> } | Error>): void {
    for (const r of results) {
      this.calls += 1;
      if (r instanceof Error) this.failures.push(`${grpc.status[(r as grpc.ServiceError).code] ?? ''} ${r.message}`);
      else if (r.request_headers[':peer-uri'] !== this.peer) this.failures.push(`peer ${r.request_headers[':peer-uri']}`);
    }
    expect(this.failures, `failed calls: ${this.failures.join('; ')}`).toEqual([]);
  }
}
