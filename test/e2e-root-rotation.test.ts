// Root rotation end to end, nothing faked: the mesh CA (12 s workload certificates) stages a new
// root; real agents pick up the two-root bundle at their next renewal; the new root starts signing
// one certificate lifetime later; from then on workloads holding certificates of the old root and
// of the new one call each other over mTLS (grpc-js-xds with gRPC's file_watcher) while calls run
// in a loop, and not one fails. The control: a new-root certificate does not verify against the
// old bundle alone, so the calls succeed only because the agents learned the staged root.
import './helpers/xds-rbac-env.ts'; // before grpc-js-xds is loaded: the server runs RBAC filters
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { certFilePaths } from '../control-plane/agent/cert-files.ts';
import { CallTally, chainVerifies, clientOf, pemBlocks, startIdentityMesh, startRatingsServer, startWorkload, TD, type Workload } from './helpers/identity-mesh.ts';
import { outcome, RATINGS, settlesOn } from './helpers/mtls-rules.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const TTL_MS = 12_000;
const teardown = new Teardown();
afterEach(() => teardown.run());

describe('root rotation with overlap', () => {
  it('workloads holding certificates from the old and the new root keep talking, with zero failed calls', { timeout: 120_000 }, async () => {
    const { dir, port, mesh, bundle } = await startIdentityMesh(teardown, TTL_MS);
    const ca = mesh.cp.ca!;
    const oldRoot = ca.roots()[0]!.toString('pem');
    const [productpage, ratings] = await Promise.all(['productpage', 'ratings'].map((sa) => startWorkload(teardown, dir, sa, mesh.cp.xdsAddress, bundle)));
    const agents = [productpage!, ratings!];
    await startRatingsServer(teardown, mesh, port, ratings!);
    const pp = clientOf(mesh, productpage!);
    await settlesOn(pp, 'ok', 'productpage over mTLS before the rotation');

    const PP = `spiffe://${TD}/ns/default/sa/productpage`;
    const counted = new CallTally(PP);
    const { failures } = counted;
    const tally = (results: Array<Awaited<ReturnType<typeof pp.call>> | Error>) => counted.add(results);
    const fixedNode = pp.nodeId.replace(/~([^~]*)\.default~/, '~$1-fresh.default~');
    let lastFresh = 0;
    // Calls on the long-lived channel, and once a second on a new channel with connections of its
    // own (a new handshake with whatever the agents' files hold then).
    const burst = async () => {
      const results = await Promise.all(Array.from({ length: 4 }, () => pp.call(RATINGS, {}, 5000).then((r) => r, (e: grpc.ServiceError) => e)));
      if (Date.now() - lastFresh >= 1000) {
        lastFresh = Date.now();
        const fresh = clientOf(mesh, productpage!, { nodeId: fixedNode, ownConnections: true });
        results.push(await fresh.call(RATINGS, {}, 5000).then((r) => r, (e: grpc.ServiceError) => e));
        fresh.close();
      }
      tally(results);
    };
    const signedBy = (w: Workload, rootPem: string) => chainVerifies(w.agent.certs.current()!.cert.chainPem, rootPem);
    const trusts = (w: Workload) => pemBlocks(fs.readFileSync(certFilePaths(path.join(dir, `${w.sa}-certs`)).caCertificateFile, 'utf8')).length;

    // Phase 1: the new root joins the bundle; the old one keeps signing.
    const staged = await ca.stageRoot(new Date(Date.now() + TTL_MS));
    const newRoot = ca.roots().find((c) => c.serialNumber === staged.serial)!.toString('pem');
    const renewedBefore = agents.map((w) => w.serials.length);
    await waitFor(
      async () => {
        await burst();
        return agents.every((w, i) => w.serials.length > renewedBefore[i]! && trusts(w) === 2);
      },
      { timeoutMs: TTL_MS, intervalMs: 50, description: 'both agents renewed during staging and trust both roots' },
    );
    for (const w of agents) expect(signedBy(w, oldRoot), `${w.sa}: still signed by the old root while staged`).toBe(true);
    expect(Date.now()).toBeLessThan(staged.activateAt!.getTime());

    // Phase 2 at its time. A workload starting now gets a new-root certificate while ratings
    // still holds its old-root one: both directions of that handshake must verify.
    await waitFor(
      async () => {
        await burst();
        return ca.rootInfo()[0]!.serial === staged.serial || Date.now() > staged.activateAt!.getTime() + 1000;
      },
      { timeoutMs: TTL_MS + 5000, intervalMs: 50, description: 'the staged root activated on its timer' },
    );
    expect(ca.rootInfo()[0]).toMatchObject({ serial: staged.serial, signing: true });
    // A pod started now mounts the published bundle (both roots), not the one from before.
    const newcomer = await startWorkload(teardown, dir, 'productpage', mesh.cp.xdsAddress, ca.bundlePem(), 'productpage-newcomer-certs');
    expect(chainVerifies(newcomer.agent.certs.current()!.cert.chainPem, newRoot)).toBe(true);
    expect(chainVerifies(newcomer.agent.certs.current()!.cert.chainPem, oldRoot)).toBe(false);
    const stillOld = agents.filter((w) => signedBy(w, oldRoot)).map((w) => w.sa);
    // Some original workload still presents an old-root certificate next to the newcomer's.
    expect(stillOld.length).toBeGreaterThan(0);
    const mixed = clientOf(mesh, newcomer, { ownConnections: true });
    const mixedReply = await mixed.call(RATINGS, {}, 5000);
    tally([mixedReply]);
    expect(mixedReply.request_headers[':peer-serial']?.toUpperCase()).toBe(newcomer.agent.certs.current()!.cert.serial.toUpperCase());
    mixed.close();

    // Until both original agents present new-root certificates, calls go on; none may fail.
    await waitFor(
      async () => {
        await burst();
        return agents.every((w) => signedBy(w, newRoot));
      },
      { timeoutMs: TTL_MS + 5000, intervalMs: 50, description: 'both agents renewed with the new root' },
    );
    expect(failures).toEqual([]);
    expect(await outcome(clientOf(mesh, productpage!, { ownConnections: true }), 5000)).toBe('ok');
    console.log(`e2e-root-rotation: ${counted.calls} calls, 0 failed; old-root certificates still in use when the new root started signing: ${stillOld.join(', ')}`);
  });
});
