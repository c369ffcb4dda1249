// End to end, nothing faked: meshpilot's own mesh CA (serve --xds-tls, 8 s workload certificates)
// issues the certificates; real `meshpilot agent`s (startAgent, in-process) fetch them with
// bootstrap tokens, write them to files and renew them; real grpc-js-xds peers read those files with
// gRPC's file_watcher certificate provider and get their config over the plaintext xDS listener
// (grpc-js-xds 1.14.1 cannot do TLS to xDS). Rules: STRICT for ratings, ISTIO_MUTUAL towards it
// (gRPC has no auto mTLS), an AuthorizationPolicy admitting only productpage's SPIFFE ID.
// The CA going away: the control plane (CA and xDS together) stopped for a few seconds and
// restarted on the same addresses with the same root; calls go on, the agents renew afterwards.
import './helpers/xds-rbac-env.ts'; // before grpc-js-xds is loaded: the server runs RBAC filters
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { CallTally, chainVerifies, clientOf, startIdentityMesh, startRatingsServer, startWorkload, TD, type Workload } from './helpers/identity-mesh.ts';
import { outcome, RATINGS, settlesOn } from './helpers/mtls-rules.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const CERT_TTL_MS = 8000;
const teardown = new Teardown();
afterEach(() => teardown.run());

describe('workload identity end to end: mesh CA -> agents -> file_watcher -> mTLS between proxyless gRPC peers', () => {
  it('productpage gets through over mTLS with its SPIFFE ID, reviews is denied, plaintext is refused, and calls never fail across certificate renewals', { timeout: 90_000 }, async () => {
    const { dir, port, mesh, bundle } = await startIdentityMesh(teardown, CERT_TTL_MS);

    // The agents get their certificates from the CA on the TLS port.
    const [productpage, ratings, reviews] = await Promise.all(['productpage', 'ratings', 'reviews'].map((sa) => startWorkload(teardown, dir, sa, mesh.cp.xdsAddress, bundle)));
    for (const w of [productpage!, ratings!, reviews!]) {
      const cert = new X509Certificate(fs.readFileSync(certFilePaths(path.join(dir, `${w.sa}-certs`)).certificateFile));
      expect(cert.subjectAltName).toBe(`URI:spiffe://${TD}/ns/default/sa/${w.sa}`);
      expect(Date.parse(cert.validTo) - Date.now()).toBeLessThanOrEqual(CERT_TTL_MS); // notBefore is backdated for clock skew
    }

    await startRatingsServer(teardown, mesh, port, ratings!);
    const client = (w: Workload, opts: { tls?: boolean; nodeId?: string; ownConnections?: boolean } = {}) => clientOf(mesh, w, opts);

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

  it('the CA stopped for a while: calls keep working on the current certificates, and the agents renew when it is back', { timeout: 90_000 }, async () => {
    // 20 s certificates: the first renewal is due 8-12 s after issue, so stopping the control plane
    // right away makes that renewal fail while well over 8 s of the certificates' life is left.
    const TTL_MS = 20_000;
    const { mesh, port, bundle, xdsTls } = await startIdentityMesh(teardown, TTL_MS);
    const tlsAddress = mesh.cp.xdsAddress;
    const plainAddress = mesh.cp.xdsPlaintextAddress!;
    const [productpage, ratings] = await Promise.all(['productpage', 'ratings'].map((sa) => startWorkload(teardown, mesh.dir, sa, tlsAddress, bundle)));
    const agents = [productpage!, ratings!];
    await startRatingsServer(teardown, mesh, port, ratings!);
    const pp = clientOf(mesh, productpage!);
    await settlesOn(pp, 'ok', 'productpage over mTLS before the outage');

    const PP = `spiffe://${TD}/ns/default/sa/productpage`;
    const counted = new CallTally(PP);
    const { failures } = counted;
    const tally = (results: Array<Awaited<ReturnType<typeof pp.call>> | Error>) => counted.add(results);
    const burst = async () => tally(await Promise.all(Array.from({ length: 5 }, () => pp.call(RATINGS, {}, 5000).then((r) => r, (e: grpc.ServiceError) => e))));
    const failedAttempts = (w: Workload) => w.logs.filter((l) => l.msg === 'agent: certificate request failed; retrying').length;

    // The agents log when their next renewal is due: the control plane goes away shortly before
    // the first of them, so the outage lasts a few seconds (until both have failed to renew).
    const renewalDue = agents.map((w) => {
      const issued = w.logs.filter((l) => l.msg === 'agent: certificate issued' || l.msg === 'agent: certificate renewed').at(-1)!;
      return (issued.time as number) + (issued.nextRenewalInMs as number);
    });
    await waitFor(
      async () => {
        await burst();
        return Date.now() >= Math.min(...renewalDue) - 500;
      },
      { timeoutMs: 20_000, intervalMs: 50, description: 'the first renewal nearly due' },
    );
    // The outage: CA and xDS both gone. The agents still hold their current certificates.
    const before = agents.map((w) => ({ serial: w.agent.certs.current()!.cert.serial, notAfter: w.agent.certs.current()!.cert.notAfter.getTime(), renewals: w.serials.length, failed: failedAttempts(w) }));
    await mesh.cp.stop();
    const outageStart = Date.now();
    await waitFor(
      async () => {
        await burst();
        return agents.every((w, i) => failedAttempts(w) > before[i]!.failed);
      },
      { timeoutMs: 15_000, intervalMs: 50, description: 'a failed renewal attempt by each agent while the control plane is down' },
    );
    // A little more of the outage, with the agents retrying (backoff 100-400 ms).
    const failedBefore = agents.map(failedAttempts);
    await waitFor(
      async () => {
        await burst();
        return agents.every((w, i) => failedAttempts(w) >= failedBefore[i]! + 2);
      },
      { timeoutMs: 5000, intervalMs: 50, description: 'more failed renewal attempts' },
    );
    const outageMs = Date.now() - outageStart;
    const failedDuringOutage = agents.map((w, i) => failedAttempts(w) - before[i]!.failed);
    agents.forEach((w, i) => {
      expect(w.serials.length, `${w.sa}: no certificate during the outage`).toBe(before[i]!.renewals);
      expect(w.agent.certs.current()!.cert.serial).toBe(before[i]!.serial);
      expect(before[i]!.notAfter, `${w.sa}: the certificate outlives the outage`).toBeGreaterThan(Date.now() + 2000);
    });

    // Back on the same addresses with the same CA dir and tokens: the same root. Another process
    // may have taken a port meanwhile; retry the bind a few times.
    let restarted: ControlPlane | undefined;
    for (let attempt = 1; !restarted; attempt++) {
      try {
        restarted = await startControlPlane({ configDir: mesh.dir, xdsListen: tlsAddress, xdsTls, xdsPlaintextListen: plainAddress, adminListen: null, debounceMs: 20, logLevel: process.env.MESHPILOT_TEST_LOG_LEVEL ?? 'error' });
      } catch (err) {
        if (attempt >= 10 || !/EADDRINUSE|address already in use|No address added/i.test(String((err as Error).message ?? err))) throw err;
        await burst();
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const cp = restarted;
    teardown.add(() => cp.stop());
    expect(cp.xdsAddress).toBe(tlsAddress);
    expect(cp.xdsPlaintextAddress).toBe(plainAddress);
    expect(fs.readFileSync(cp.ca!.trustBundlePath, 'utf8'), 'the same trust bundle').toBe(bundle);

    // Both agents renew (a new serial) with certificates that verify against the unchanged bundle.
    await waitFor(
      async () => {
        await burst();
        return agents.every((w, i) => w.serials.length > before[i]!.renewals);
      },
      { timeoutMs: 10_000, intervalMs: 50, description: 'both agents renewed after the restart' },
    );
    const after = agents.map((w) => w.agent.certs.current()!.cert);
    agents.forEach((w, i) => {
      expect(after[i]!.serial).not.toBe(before[i]!.serial);
      expect(chainVerifies(after[i]!.chainPem, bundle), `${w.sa}: the new certificate verifies against the bundle`).toBe(true);
      expect(chainVerifies(fs.readFileSync(certFilePaths(path.join(mesh.dir, `${w.sa}-certs`)).certificateFile, 'utf8'), bundle)).toBe(true);
    });

    // A new channel needs its config over xDS: it shares the connection to the xDS server with the
    // old channel's xDS client (gRPC's global subchannel pool), which reconnects on gRPC's backoff.
    await waitFor(
      async () => {
        await burst();
        const ids = new Set([...cp.ads.streams].map((s) => s.proxy?.id));
        return ids.has(pp.nodeId);
      },
      { timeoutMs: 20_000, intervalMs: 50, description: "productpage's xDS client back on the restarted control plane" },
    );
    // New channels (connections of their own, so new TLS handshakes) until the server sees
    // productpage's renewed certificate (file_watcher reads the files every second).
    const fixedNode = pp.nodeId.replace(/~([^~]*)\.default~/, '~$1-fresh.default~');
    const newSerial = after[0]!.serial.toUpperCase();
    let freshCalls = 0;
    await waitFor(
      async () => {
        await burst();
        const fresh = clientOf(mesh, productpage!, { nodeId: fixedNode, ownConnections: true });
        const r = await fresh.call(RATINGS, {}, 5000).then((x) => x, (e: grpc.ServiceError) => e);
        fresh.close();
        freshCalls += 1;
        tally([r]);
        return !(r instanceof Error) && r.request_headers[':peer-serial']?.toUpperCase() === newSerial;
      },
      { timeoutMs: 10_000, intervalMs: 300, description: "a new channel's handshake with productpage's renewed certificate" },
    );
    expect(failures).toEqual([]);
    console.log(
      `e2e-identity (CA outage): ${counted.calls} calls (${freshCalls} on new channels after the restart), 0 failed; outage ${outageMs} ms; failed renewal attempts during it: ${JSON.stringify(Object.fromEntries(agents.map((w, i) => [w.sa, failedDuringOutage[i]])))}; serials: ${JSON.stringify(Object.fromEntries(agents.map((w, i) => [w.sa, `${before[i]!.serial} -> ${after[i]!.serial}`])))}`,
    );
  });
});
