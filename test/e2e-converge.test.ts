// A real proxyless gRPC client (@grpc/grpc-js-xds) must come back to the config in force after its
// Listener and Cluster were reported missing (left out of LDS/CDS answers) and then restored
// unchanged, on the same ADS stream and across a meshpilot restart. grpc-js-xds 1.14.1 drops a
// returning resource that equals the copy it kept when told the resource does not exist, so
// without meshpilot's workaround (control-plane/xds/grpc-revive.ts) these clients stay UNAVAILABLE
// for good while meshpilot sees every answer ACKed.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane } from '../control-plane/server.ts';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS, serviceTo } from './helpers/bookinfo-rules.ts';
import { replaceFile, serviceEntriesYaml, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown, type TestMesh } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const TARGET = targetOf('reviews');

const reviewsTo = (subset: string) => serviceTo(REVIEWS, subset);

const teardown = new Teardown();
let backends: BackendSet;
let mesh: TestMesh;

/** The version that answered one call, or `error:<STATUS>`. */
async function outcome(client: XdsClient): Promise<string> {
  try {
    return (await client.call(TARGET, {}, 2000)).version;
  } catch (err) {
    return `error:${grpc.status[(err as grpc.ServiceError).code]}`;
  }
}

async function until(client: XdsClient, want: string, description: string): Promise<void> {
  await waitFor(
    async () => {
      const got = await outcome(client);
      if (got !== want) throw new Error(`last call: ${got}`);
      return true;
    },
    { timeoutMs: 10_000, intervalMs: 100, description },
  );
}

/** services.yaml without reviews: its Listener and Clusters leave every answer. */
function removeReviews(): Promise<string> {
  return replaceFile(mesh.dir, 'services.yaml', serviceEntriesYaml(backends.backends.filter((b) => b.service !== 'reviews')));
}

/** services.yaml as it was: the same model, so byte-identical resources. */
function restoreReviews(): Promise<string> {
  return replaceFile(mesh.dir, 'services.yaml', serviceEntriesYaml(backends.backends));
}

beforeAll(async () => {
  backends = await startBackends([
    { service: 'reviews', version: 'v1' },
    { service: 'reviews', version: 'v2' },
    { service: 'ratings', version: 'v1' },
  ]);
  teardown.add(() => backends.stop());
  mesh = await startTestMesh(teardown, { backends: backends.backends, files: { 'rules.yaml': reviewsTo('v2') }, prefix: 'converge' });
}, 30_000);

afterAll(() => teardown.run());

describe('a gRPC client converges after its resources were reported missing', () => {
  it('comes back when the Listener and Cluster return unchanged on the same stream', async () => {
    const client = mesh.client();
    await until(client, 'v2', 'routed to v2 at first');
    await removeReviews();
    await until(client, 'error:UNAVAILABLE', 'calls fail while reviews is not in the mesh');
    await restoreReviews();
    await until(client, 'v2', 'routed to v2 again after the restore');
    expect(await client.split(TARGET, 50)).toEqual({ v2: 50 });
  });

  it('comes back when meshpilot restarts on the same address with the files fixed', async () => {
    const client = mesh.client();
    await until(client, 'v2', 'routed to v2 at first');
    await removeReviews();
    await until(client, 'error:UNAVAILABLE', 'calls fail while reviews is not in the mesh');
    // The client keeps its state (and the "does not exist" it was told) through the restart.
    const address = mesh.cp.xdsAddress;
    await mesh.cp.stop();
    await restoreReviews();
    const restarted = await startControlPlane({ configDir: mesh.dir, xdsListen: address, adminListen: null, debounceMs: 20, logLevel: 'error' });
    teardown.add(() => restarted.stop());
    await until(client, 'v2', 'routed to v2 again after the restart');
    expect(await client.split(TARGET, 50)).toEqual({ v2: 50 });
  });
});
