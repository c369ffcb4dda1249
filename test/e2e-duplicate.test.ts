// End to end: a second VirtualService with the key of the one in force, in a file that sorts
// first, must not move live traffic. Real grpc-js-xds clients call real backends; the newcomer is
// listed as rejected with both locations, and takes over only when the original is deleted.
import { rm } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatIssue } from '../control-plane/model/compile.ts';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS, serviceTo } from './helpers/bookinfo-rules.ts';
import { replaceFile, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const TARGET = targetOf('reviews');

const rule = (subset: string) => serviceTo(REVIEWS, subset);

describe('a duplicate VirtualService', () => {
  let backends: BackendSet;
  const teardown = new Teardown();
  beforeAll(async () => {
    backends = await startBackends(['v1', 'v2'].map((version) => ({ service: 'reviews', version })));
  });
  afterAll(() => backends.stop());
  afterEach(() => teardown.run());

  it('leaves traffic where the rule in force sends it, is reported with both locations, and takes over when the original goes', async () => {
    const mesh = await startTestMesh(teardown, { backends: backends.backends, files: { 'reviews.yaml': rule('v1') }, prefix: 'duplicate' });
    const client = mesh.client();
    await waitFor(async () => (await client.split(TARGET, 20)).v1 === 20, { timeoutMs: 15_000, description: 'v1 to take the calls' });

    // The newcomer sorts before reviews.yaml.
    await replaceFile(mesh.dir, 'another.yaml', rule('v2'));
    await waitFor(() => mesh.cp.state().rejected.includes('VirtualService/default/reviews'), { timeoutMs: 10_000, description: 'the duplicate to be rejected' });
    const r = mesh.cp.state().rejections.find((x) => x.rule === 'VirtualService/default/reviews')!;
    expect(r.inForce).toBe(`${mesh.file('reviews.yaml')}:1`);
    expect(r.errors.map(formatIssue)).toEqual([
      `${mesh.file('another.yaml')}:4:9 metadata.name: duplicate VirtualService default/reviews: the one at ${mesh.file('reviews.yaml')}:4:9 stays in force (it was in force first); this one is ignored (VirtualService default/reviews)`,
    ]);
    // A later push reaches the client (the ServiceEntry file rewritten), and the split is unchanged.
    expect(await client.split(TARGET, 200)).toEqual({ v1: 200 });

    await rm(mesh.file('reviews.yaml'));
    await waitFor(async () => (await client.split(TARGET, 20)).v2 === 20, { timeoutMs: 15_000, description: 'the newcomer to take over' });
    expect(mesh.cp.state().rejected).toEqual([]);
  });
});
