// End to end: AuthorizationPolicy enforced by a real xDS-enabled gRPC server (grpc-js-xds
// XdsServer, RBAC HTTP filter) that meshpilot configures, called by real proxyless gRPC clients.
// Nothing here inspects generated xDS: a wrongly translated policy admits or refuses the wrong calls.
//
// Every process here connects from 127.0.0.1, so callers are told apart by a request header,
// `x-caller: <app>-<version>` (policies use `when: request.headers[x-caller]`), and by gRPC method
// path. Source IPs are exercised through meshpilot's workloadSelector extension: a WorkloadEntry
// that moves onto 127.0.0.1 starts matching every caller here, which proves the IPs follow the
// endpoints live.

// First: sets GRPC_XDS_EXPERIMENTAL_RBAC=true before grpc-js-xds is loaded (vitest runs each test
// file in its own worker, so this stays within this file).
import './helpers/xds-rbac-env.ts';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ControlPlane } from '../control-plane/server.ts';
import { batchWorkload, DENY_BATCH_WORKLOADS, denyCallers, ONLY_V1_V2 } from './helpers/bookinfo-rules.ts';
import { replaceFile, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { createXdsClient, type XdsClient } from './helpers/xds-client.ts';
import { reserveLoopbackPort, startXdsEchoServer, type XdsEchoServer } from './helpers/xds-server.ts';
import { authorizationPolicy } from './helpers/yaml-builders.ts';

const RATINGS = targetOf('ratings');
const CALLERS = ['reviews-v1', 'reviews-v2', 'reviews-v3'] as const;

// ---------------------------------------------------------------------------
// Policies (denyCallers, ONLY_V1_V2, DENY_BATCH_WORKLOADS, batchWorkload: test/helpers/bookinfo-rules.ts).

function onlyPath(pathValue: string): string {
  return authorizationPolicy({ name: 'ratings-callers', selector: { app: 'ratings' }, rules: [{ to: [{ operation: { paths: [pathValue] } }] }] });
}

// ---------------------------------------------------------------------------
// One mesh per test: ratings v1 is an XdsServer; clients call it through meshpilot.

interface Mesh {
  dir: string;
  cp: ControlPlane;
  server: XdsEchoServer;
  client: XdsClient;
}

const teardown = new Teardown();

afterEach(() => teardown.run());

async function startMesh(files: Record<string, string>): Promise<Mesh> {
  const port = await reserveLoopbackPort();
  // The server's own endpoint must be in the mesh before it starts: its Listener is built from it.
  const backends = [{ service: 'ratings', version: 'v1', port, address: `127.0.0.1:${port}` }];
  const { dir, cp } = await startTestMesh(teardown, { backends, files, prefix: 'authz' });
  expect(cp.state().errors, 'rule errors').toEqual([]);
  const server = await startXdsEchoServer({ xdsAddress: cp.xdsAddress, service: 'ratings', version: 'v1', port });
  teardown.add(() => server.stop());
  const client = createXdsClient({ xdsAddress: cp.xdsAddress, labels: { app: 'reviews', version: 'v1' } });
  teardown.add(() => client.close());
  return { dir, cp, server, client };
}

/** `ok` or the gRPC status name of a failed call. */
async function outcome(client: XdsClient, caller?: string): Promise<string> {
  try {
    const reply = await client.call(RATINGS, caller ? { 'x-caller': caller } : {});
    expect(reply.service).toBe('ratings');
    return 'ok';
  } catch (err) {
    const code = (err as grpc.ServiceError).code;
    return typeof code === 'number' ? grpc.status[code] : String(err);
  }
}

/** Outcome of `n` calls from each caller (and from a call without x-caller), e.g. { 'reviews-v3': { PERMISSION_DENIED: 20 } }. */
async function outcomes(client: XdsClient, n = 20): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const caller of [...CALLERS, undefined]) {
    const counts: Record<string, number> = {};
    const results = await Promise.all(Array.from({ length: n }, () => outcome(client, caller)));
    for (const r of results) counts[r] = (counts[r] ?? 0) + 1;
    out[caller ?? '(none)'] = counts;
  }
  return out;
}

function expected(denied: string[], n = 20): Record<string, Record<string, number>> {
  return Object.fromEntries([...CALLERS, '(none)'].map((c): [string, Record<string, number>] => [c, denied.includes(c) ? { PERMISSION_DENIED: n } : { ok: n }]));
}

/** Waits until every caller gets the expected outcome (a live change has reached the server). */
async function until(client: XdsClient, denied: string[], what: string): Promise<void> {
  let last: unknown;
  await waitFor(
    async () => {
      last = await outcomes(client, 5);
      return JSON.stringify(last) === JSON.stringify(expected(denied, 5));
    },
    { timeoutMs: 15_000, intervalMs: 50, description: `${what}; last outcomes ${JSON.stringify(last)}` },
  );
}

/**
 * The first calls wait for the client's xDS resolution and the server's Listener; the mesh is ready
 * once a call is answered by the server's RBAC filter or handler (admitted or denied, not unreachable).
 */
async function ready(client: XdsClient): Promise<void> {
  await waitFor(async () => ['ok', 'PERMISSION_DENIED'].includes(await outcome(client, 'probe')), {
    timeoutMs: 20_000,
    intervalMs: 100,
    description: 'a first answer from ratings',
  });
}

// ---------------------------------------------------------------------------

describe('AuthorizationPolicy on an xDS-enabled gRPC server', () => {
  it('denies the listed caller with PERMISSION_DENIED, admits the others, and follows live edits', async () => {
    const mesh = await startMesh({ 'authz.yaml': denyCallers('deny-v3', ['reviews-v3']) });
    await ready(mesh.client);
    expect(await outcomes(mesh.client)).toEqual(expected(['reviews-v3']));

    // Flip the policy live: now v1 is the denied caller, v3 is admitted again.
    await replaceFile(mesh.dir, 'authz.yaml', denyCallers('deny-v3', ['reviews-v1']));
    await until(mesh.client, ['reviews-v1'], 'the DENY list to move from v3 to v1');
    expect(await outcomes(mesh.client)).toEqual(expected(['reviews-v1']));

    // Dry run: evaluated by Envoy sidecars only; a gRPC server leaves it out, so nobody is denied.
    await replaceFile(mesh.dir, 'authz.yaml', denyCallers('deny-v3', ['reviews-v1'], { 'istio.io/dry-run': 'true' }));
    await until(mesh.client, [], 'the dry-run policy to stop enforcing');
    expect(await outcomes(mesh.client)).toEqual(expected([]));

    // Back to enforcing, then the policy file is deleted (emptied): everyone is admitted.
    await replaceFile(mesh.dir, 'authz.yaml', denyCallers('deny-v3', ['reviews-v2', 'reviews-v3']));
    await until(mesh.client, ['reviews-v2', 'reviews-v3'], 'the DENY list v2 + v3');
    await replaceFile(mesh.dir, 'authz.yaml', '');
    await until(mesh.client, [], 'the deleted policy to stop enforcing');
  });

  it('with an ALLOW policy admits only the listed callers, DENY wins over ALLOW, and a broken edit keeps the last good policy', async () => {
    const mesh = await startMesh({ 'authz.yaml': ONLY_V1_V2 });
    await ready(mesh.client);
    await until(mesh.client, ['reviews-v3', '(none)'], 'the allow list v1 + v2');
    expect(await outcomes(mesh.client)).toEqual(expected(['reviews-v3', '(none)']));

    // An invalid edit (unsupported action) is rejected; the policy in force stays.
    await replaceFile(mesh.dir, 'authz.yaml', ONLY_V1_V2.replace('action: ALLOW', 'action: LOG'));
    await waitFor(() => mesh.cp.state().errors.some((e) => e.message.includes('must be one of ALLOW, DENY, AUDIT, CUSTOM (got "LOG")')), { timeoutMs: 10_000, description: 'the LOG edit to be rejected' });
    expect(await outcomes(mesh.client)).toEqual(expected(['reviews-v3', '(none)']));

    // DENY is evaluated before ALLOW: v1 is on the allow list and on a deny list, so it is denied.
    await replaceFile(mesh.dir, 'deny.yaml', denyCallers('deny-v1', ['reviews-v1']));
    await until(mesh.client, ['reviews-v1', 'reviews-v3', '(none)'], 'the DENY policy to override the ALLOW list for v1');
    await replaceFile(mesh.dir, 'deny.yaml', '');

    // An allow list by gRPC method: a path this service does not have admits no call at all.
    await replaceFile(mesh.dir, 'authz.yaml', onlyPath('/meshpilot.demo.v1.Echo/Other'));
    await until(mesh.client, [...CALLERS, '(none)'], 'the allow list by a method path nobody calls');
    await replaceFile(mesh.dir, 'authz.yaml', onlyPath('/meshpilot.demo.v1.Echo/Call'));
    await until(mesh.client, [], 'the allow list by the Call method path');
  });

  it('resolves a workloadSelector source to the workload IPs and follows the endpoint when it moves', async () => {
    // batch-1 starts on an address no caller here uses: the DENY policy matches nobody.
    const mesh = await startMesh({ 'authz.yaml': DENY_BATCH_WORKLOADS, 'batch.yaml': batchWorkload('10.99.0.1') });
    await ready(mesh.client);
    expect(await outcomes(mesh.client, 10)).toEqual(expected([], 10));

    // The workload moves onto 127.0.0.1, where every caller in this test connects from.
    await replaceFile(mesh.dir, 'batch.yaml', batchWorkload('127.0.0.1'));
    await until(mesh.client, [...CALLERS, '(none)'], 'calls from the batch workload IP to be denied');

    // And away again.
    await replaceFile(mesh.dir, 'batch.yaml', batchWorkload('10.99.0.2'));
    await until(mesh.client, [], 'calls from 127.0.0.1 to be admitted again');
  });
});
