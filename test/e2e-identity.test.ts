// End to end, nothing faked: meshpilot's own mesh CA (serve --xds-tls, 8 s workload certificates)
// issues the certificates; real `meshpilot agent`s (startAgent, in-process) fetch them with
// bootstrap tokens, write them to files and renew them; real grpc-js-xds peers read those files with
// gRPC's file_watcher certificate provider and get their config over the plaintext xDS listener
// (grpc-js-xds 1.14.1 cannot do TLS to xDS). Rules: STRICT for ratings, ISTIO_MUTUAL towards it
// (gRPC has no auto mTLS), an AuthorizationPolicy admitting only productpage's SPIFFE ID.
// Not covered: the CA going away (it lives in the control plane, which also serves xDS).
import './helpers/xds-rbac-env.ts'; // before grpc-js-xds is loaded: the server runs RBAC filters
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type RunningAgent } from '../control-plane/agent/agent.ts';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { grpcBootstrap } from '../control-plane/agent/grpc-bootstrap.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { ISTIO_MUTUAL, ONLY_PRODUCTPAGE, outcome, peerAuth, RATINGS, ratingsEntry, settlesOn } from './helpers/mtls-rules.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { reserveLoopbackPort, startXdsEchoServer } from './helpers/xds-server.ts';

const TD = 'cluster.local';
const CERT_TTL_MS = 8000;
const teardown = new Teardown();
afterEach(() => teardown.run());

interface Workload {
  sa: string;
  agent: RunningAgent;
  /** Serials of every certificate the agent put in its files, in order. */
  serials: string[];
  /** Bootstrap `certificate_providers` reading the agent's files (file_watcher, every 1 s). */
  providers: Record<string, unknown>;
}

async function startWorkload(dir: string, sa: string, caAddress: string, bundle: string): Promise<Workload> {
  const tokenFile = path.join(dir, `${sa}.token`);
  fs.writeFileSync(tokenFile, `token-${sa}\n`);
  const outDir = path.join(dir, `${sa}-certs`);
  const agent = await startAgent({
    identity: { trustDomain: TD, namespace: 'default', serviceAccount: sa },
    ca: { address: caAddress, caRootPem: bundle, tokenFile },
    outDir,
    validitySeconds: 3600, // the CA caps it at CERT_TTL_MS
    logger: captureLogs().logger,
    backoff: { initialMs: 100, maxMs: 400 },
  });
  teardown.add(() => agent.stop());
  const serials: string[] = [];
  agent.certs.on('cert', (c) => serials.push(c.cert.serial));
  const first = await agent.certs.ready();
  if (!serials.includes(first.cert.serial)) serials.unshift(first.cert.serial);
  // The same provider block the agent writes into a proxyless app's bootstrap (--grpc-bootstrap).
  const providers = grpcBootstrap({ xdsAddress: '', creds: 'insecure', files: certFilePaths(outDir), nodeId: '', namespace: 'default', labels: {}, refreshSeconds: 1 }).certificate_providers as Record<string, unknown>;
  return { sa, agent, serials, providers };
}

describe('workload identity end to end: mesh CA -> agents -> file_watcher -> mTLS between proxyless gRPC peers', () => {
  it('productpage gets through over mTLS with its SPIFFE ID, reviews is denied, plaintext is refused, and calls never fail across certificate renewals', { timeout: 90_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-e2e-identity-'));
    teardown.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    const tokens = path.join(dir, 'ca-tokens');
    fs.writeFileSync(tokens, ['productpage', 'ratings', 'reviews'].map((sa) => `token-${sa} default ${sa}`).join('\n') + '\n', { mode: 0o600 });

    const port = await reserveLoopbackPort();
    const mesh = await startTestMesh(teardown, {
      backends: [],
      prefix: 'identity',
      files: { 'ratings.yaml': ratingsEntry(port), 'mtls.yaml': `${peerAuth('STRICT')}---\n${ISTIO_MUTUAL}---\n${ONLY_PRODUCTPAGE}` },
      controlPlane: { xdsTls: { dir: path.join(dir, 'ca'), tokensFile: tokens, workloadCertTtlMs: CERT_TTL_MS }, xdsPlaintextListen: '127.0.0.1:0' },
    });
    expect(mesh.cp.state().errors, 'rule errors').toEqual([]);
    const xdsPlain = mesh.cp.xdsPlaintextAddress!;
    expect(xdsPlain).toBeDefined();
    const bundle = fs.readFileSync(mesh.cp.ca!.trustBundlePath, 'utf8');

    // The agents get their certificates from the CA on the TLS port.
    const [productpage, ratings, reviews] = await Promise.all(['productpage', 'ratings', 'reviews'].map((sa) => startWorkload(dir, sa, mesh.cp.xdsAddress, bundle)));
    for (const w of [productpage!, ratings!, reviews!]) {
      const cert = new X509Certificate(fs.readFileSync(certFilePaths(path.join(dir, `${w.sa}-certs`)).certificateFile));
      expect(cert.subjectAltName).toBe(`URI:spiffe://${TD}/ns/default/sa/${w.sa}`);
      expect(Date.parse(cert.validTo) - Date.now()).toBeLessThanOrEqual(CERT_TTL_MS); // notBefore is backdated for clock skew
    }

    const server = await startXdsEchoServer({
      xdsAddress: xdsPlain,
      service: 'ratings',
      version: 'v1',
      port,
      certificateProviders: ratings!.providers,
      credentials: new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
    });
    teardown.add(() => server.stop());

    const client = (w: Workload, opts: { tls?: boolean; nodeId?: string; ownConnections?: boolean } = {}) =>
      mesh.client({
        labels: { app: w.sa, version: 'v1' },
        serviceAccount: w.sa,
        certificateProviders: w.providers,
        credentials: opts.tls === false ? grpc.credentials.createInsecure() : new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()),
        ...(opts.nodeId ? { nodeId: opts.nodeId } : {}),
        ...(opts.ownConnections ? { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } } : {}),
      });

    // (a) productpage over mTLS; the server saw productpage's verified certificate.
    const pp = client(productpage!);
    await settlesOn(pp, 'ok', 'productpage over mTLS');
    const reply = await pp.call(RATINGS);
    expect(reply.request_headers[':peer-uri']).toBe(`spiffe://${TD}/ns/default/sa/productpage`);
    // (b) another mesh identity: the TLS handshake succeeds, the policy refuses it.
    await settlesOn(client(reviews!), 'PERMISSION_DENIED', 'reviews denied by the AuthorizationPolicy');
    // (c) plaintext: refused by STRICT.
    await settlesOn(client(productpage!, { tls: false }), 'UNAVAILABLE', 'a plaintext caller refused by STRICT');

    // (d) Calls in a loop while both agents renew at least twice and every first certificate has
    // expired: the long-lived channel, and every second a fresh channel with connections of its own
    // (a new TLS handshake, with whatever certificates the files hold then). Not one call may fail.
    const start = { productpage: productpage!.serials.length, ratings: ratings!.serials.length };
    const firstExpiry = Math.max(...[productpage!, ratings!].map((w) => Date.parse(new X509Certificate(fs.readFileSync(certFilePaths(path.join(dir, `${w.sa}-certs`)).certificateFile)).validTo)));
    const failures: string[] = [];
    const serverSawSerials = new Set<string>();
    let calls = 0;
    let freshCalls = 0;
    const done = () => productpage!.serials.length - start.productpage >= 2 && ratings!.serials.length - start.ratings >= 2 && Date.now() > firstExpiry + 1000;
    const fixedNode = pp.nodeId.replace(/~([^~]*)\.default~/, '~$1-fresh.default~');
    let lastFresh = 0;
    await waitFor(
      async () => {
        const results = await Promise.all(Array.from({ length: 5 }, () => pp.call(RATINGS, {}, 5000).then((r) => r, (e: grpc.ServiceError) => e)));
        if (Date.now() - lastFresh >= 1000) {
          lastFresh = Date.now();
          const fresh = client(productpage!, { nodeId: fixedNode, ownConnections: true });
          results.push(await fresh.call(RATINGS, {}, 5000).then((r) => r, (e: grpc.ServiceError) => e));
          fresh.close();
          freshCalls += 1;
        }
        for (const r of results) {
          calls += 1;
          if (r instanceof Error) failures.push(`${grpc.status[(r as grpc.ServiceError).code] ?? ''} ${r.message}`);
          else if (r.request_headers[':peer-uri'] !== `spiffe://${TD}/ns/default/sa/productpage`) failures.push(`peer ${r.request_headers[':peer-uri']}`);
          else serverSawSerials.add(r.request_headers[':peer-serial']!);
        }
        expect(failures).toEqual([]);
        return done();
      },
      { timeoutMs: 60_000, intervalMs: 20, description: 'two renewals of both agents, past the first certificates\' expiry' },
    );
    expect(failures).toEqual([]);
    const renewals = { productpage: productpage!.serials.length - start.productpage, ratings: ratings!.serials.length - start.ratings };
    // The server saw productpage's renewed certificates in new handshakes, not only the first one.
    expect(serverSawSerials.size).toBeGreaterThanOrEqual(2);
    // After the first certificates expired, a new connection still works both ways.
    expect(await outcome(client(productpage!, { ownConnections: true }), 5000)).toBe('ok');
    console.log(`e2e-identity: ${calls} calls (${freshCalls} on fresh connections), 0 failed; renewals during the loop: ${JSON.stringify(renewals)}; productpage serials seen by the server: ${serverSawSerials.size}`);
  });
});
