// End to end: saving rule files in place, the way editors, `>` and sync tools do, never moves or
// stops live traffic. A real grpc-js-xds client calls real backends the whole time while files are
// truncated and rewritten 50 ms later, and deleted one by one and recreated; every call must land
// where the rule sends it. Then, after a sequence of bad edits, a real removal and fixes, the client
// ends on the config in force.
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackends, type BackendSet } from './helpers/backends.ts';
import { REVIEWS, serviceTo } from './helpers/bookinfo-rules.ts';
import { serviceEntriesYaml, targetOf } from './helpers/mesh-files.ts';
import { startTestMesh, Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import type { XdsClient } from './helpers/xds-client.ts';

const TARGET = targetOf('reviews');

const rule = (subset: string) => serviceTo(REVIEWS, subset);

/** Calls without pause until stopped; counts where each landed (or how it failed). */
function keepCalling(client: XdsClient): { stop(): Promise<Record<string, number>> } {
  const counts: Record<string, number> = {};
  let running = true;
  const worker = async () => {
    while (running) {
      let key: string;
      try {
        key = (await client.call(TARGET, {}, 2000)).version;
      } catch (e) {
        key = `error:${(e as { code?: number; message?: string }).code ?? (e as Error).message}`;
      }
      counts[key] = (counts[key] ?? 0) + 1;
    }
  };
  const workers = Array.from({ length: 4 }, worker);
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
      return counts;
    },
  };
}

describe('saving rule files in place', () => {
  let backends: BackendSet;
  const teardown = new Teardown();
  beforeAll(async () => {
    backends = await startBackends(['v1', 'v2'].map((version) => ({ service: 'reviews', version })));
  });
  afterAll(() => backends.stop());
  afterEach(() => teardown.run());

  it('keeps every call on the rule in force while files are truncated, rewritten, deleted and recreated', async () => {
    const mesh = await startTestMesh(teardown, { backends: backends.backends, files: { 'rules.yaml': rule('v2') }, prefix: 'inplace' });
    const client = mesh.client();
    await waitFor(async () => (await client.split(TARGET, 10)).v2 === 10, { timeoutMs: 15_000, description: 'v2 to take the calls' });
    const names = ['rules.yaml', 'services.yaml', 'destination-rules.yaml'];
    const texts = await Promise.all(names.map((n) => readFile(mesh.file(n), 'utf8')));

    const calls = keepCalling(client);
    for (let round = 0; round < 3; round++) {
      // An editor saving in place: the file is emptied, then written 50 ms later.
      for (const [i, n] of names.entries()) {
        await truncate(mesh.file(n));
        await sleep(50);
        await writeFile(mesh.file(n), texts[i]!);
      }
      // A sync tool: every file deleted, 10 ms apart, then written again.
      for (const n of names) {
        await rm(mesh.file(n));
        await sleep(10);
      }
      for (const [i, n] of names.entries()) await writeFile(mesh.file(n), texts[i]!);
      await sleep(300);
    }
    const counts = await calls.stop();
    expect(Object.keys(counts), JSON.stringify(counts)).toEqual(['v2']);
    expect(counts.v2).toBeGreaterThan(50);
    expect(mesh.cp.state().rejected).toEqual([]);
  });

  it('ends on the config in force after bad edits, a real removal and fixes', async () => {
    const mesh = await startTestMesh(teardown, { backends: backends.backends, files: { 'rules.yaml': rule('v2') }, prefix: 'inplace-seq' });
    const client = mesh.client();
    await waitFor(async () => (await client.split(TARGET, 10)).v2 === 10, { timeoutMs: 15_000, description: 'v2 to take the calls' });
    const services = serviceEntriesYaml(backends.backends);
    const edits: Array<[string, string]> = [
      ['rules.yaml', 'http: [\n'], // syntax error
      ['rules.yaml', rule('v9')], // unknown subset
      ['services.yaml', ''], // every service removed, for real
      ['rules.yaml', rule('v1')],
      ['services.yaml', services.slice(0, 40)], // half written: does not parse
      ['services.yaml', services],
      ['rules.yaml', rule('v2').replace('route:', 'rout:')], // unknown field
      ['rules.yaml', rule('v1')],
    ];
    for (const [name, text] of edits) {
      await writeFile(mesh.file(name), text);
      await sleep(name === 'services.yaml' && text === '' ? 1500 : 150);
    }
    await waitFor(async () => (await client.split(TARGET, 20)).v1 === 20, { timeoutMs: 15_000, description: 'the client to end on v1' });
    expect(await client.split(TARGET, 100)).toEqual({ v1: 100 });
    expect(mesh.cp.state().rejected).toEqual([]);
  });
});
