// VirtualService delegation end to end with real proxyless gRPC clients: a root VirtualService for
// reviews hands the Echo service's calls to a delegate (no hosts) in another namespace; the
// delegate's rules decide where calls land, and an edit of the delegate alone moves them.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBookinfoBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS } from './helpers/bookinfo-rules.ts';
import { replaceFile, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const TARGET = targetOf('reviews');

let bookinfo: BackendSet;
const teardown = new Teardown();
beforeAll(async () => {
  bookinfo = await startBookinfoBackends();
});
afterAll(async () => {
  await bookinfo?.stop();
});
afterEach(() => teardown.run());

const ROOT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - name: echo
    match: [{ uri: { prefix: /meshpilot.demo.v1.Echo/ } }]
    delegate: { name: reviews-echo, namespace: reviews-team }
  - name: rest
    route: [{ destination: { host: reviews, subset: v3 } }]
`;

/** The delegate: testers (x-user: qa) to v2, everyone else to `others`. */
const delegate = (others: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-echo, namespace: reviews-team }
spec:
  http:
  - name: testers
    match: [{ headers: { x-user: { exact: qa } } }]
    route: [{ destination: { host: ${REVIEWS}, subset: v2 } }]
  - name: others
    route: [{ destination: { host: ${REVIEWS}, subset: ${others} } }]
`;

async function until(client: XdsClient, version: string, metadata?: Record<string, string>): Promise<void> {
  await waitFor(async () => (await client.call(TARGET, metadata).catch(() => ({ version: '' }))).version === version, { timeoutMs: 20_000, intervalMs: 100, description: `calls answered by ${version}` });
}

describe('VirtualService delegation with proxyless gRPC clients', () => {
  it('routes by the delegate\'s rules, and follows an edit of the delegate alone', async () => {
    const mesh = await startTestMesh(teardown, { backends: bookinfo.backends, files: { 'root.yaml': ROOT, 'delegate.yaml': delegate('v1') }, prefix: 'e2e-delegate' });
    const client = mesh.client();
    await until(client, 'v1');
    expect(mesh.cp.state().errors).toEqual([]);
    expect(mesh.cp.state().warnings).toEqual([]);
    expect(await client.split(TARGET, 30)).toEqual({ v1: 30 });
    expect(await client.split(TARGET, 30, { 'x-user': 'qa' })).toEqual({ v2: 30 });

    // Only the delegate's file changes: the root's delegated routes follow it.
    await replaceFile(mesh.dir, 'delegate.yaml', delegate('v3'));
    await until(client, 'v3');
    expect(await client.split(TARGET, 30)).toEqual({ v3: 30 });
    expect(await client.split(TARGET, 30, { 'x-user': 'qa' })).toEqual({ v2: 30 });

    // The delegate gone: its routes are absent (a warning), and the root's own route takes over
    // from the rest; when it comes back, its rules apply again.
    await replaceFile(mesh.dir, 'delegate.yaml', '');
    await until(client, 'v3', { 'x-user': 'qa' });
    expect(await client.split(TARGET, 30, { 'x-user': 'qa' })).toEqual({ v3: 30 });
    expect(mesh.cp.state().warnings.map((w) => w.message)).toContain('VirtualService reviews-team/reviews-echo does not exist (yet): the routes it would bring are absent (as in Istio, the rest of this VirtualService applies)');
    await replaceFile(mesh.dir, 'delegate.yaml', delegate('v1'));
    await until(client, 'v1');
    expect(await client.split(TARGET, 30, { 'x-user': 'qa' })).toEqual({ v2: 30 });
  });
});
