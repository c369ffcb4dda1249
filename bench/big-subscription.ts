// node --import tsx bench/big-subscription.ts [--names 10000,25000,50000,100000]
//
// Prints the server-side time to handle one delta and one state-of-the-world subscription naming
// that many resources (none of which exist, the costly case: each is answered as removed), with
// the name limits lifted. The stream's work runs on the event loop, so this is also how long every
// other stream and /healthz wait behind it. Median of 5, in-process, no network.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { CLUSTER } from '../control-plane/translate/type-urls.ts';
import { AdsStream } from '../control-plane/xds/ads-stream.ts';
import { DeltaStream } from '../control-plane/xds/delta-stream.ts';
import { MESH, vs } from '../test/helpers/protocol-fixtures.ts';

const arg = process.argv.indexOf('--names');
const counts = (arg > 0 ? process.argv[arg + 1]! : '10000,25000,50000,100000').split(',').map(Number);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-bench-sub-'));
fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
fs.writeFileSync(path.join(dir, 'rules.yaml'), vs(80, 20));
const cp = await startControlPlane({ configDir: dir, logger: silentLogger });
const limits = { ...cp.ads.limits, maxNamesPerRequest: Infinity, maxNamesPerStream: Infinity };
const node = { id: 'sidecar~10.9.0.1~bench.default~default.svc.cluster.local', metadata: { fields: { GENERATOR: { stringValue: 'grpc' } } } };

function median(run: () => void): number {
  const times: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[2]!;
}

for (const n of counts) {
  const names = Array.from({ length: n }, (_, i) => `outbound|9080|v${i}|svc-${i}.default.svc.cluster.local`);
  const delta = median(() => new DeltaStream(cp.cache, () => {}, silentLogger, { limits }).onRequest({ node, type_url: CLUSTER, resource_names_subscribe: names }));
  const sotw = median(() => {
    const s = new AdsStream(cp.cache, () => {}, silentLogger, { limits });
    s.onRequest({ node, type_url: CLUSTER, resource_names: names });
    s.close();
  });
  console.log(`${String(n).padStart(7)} names: delta ${delta.toFixed(1)} ms, sotw ${sotw.toFixed(1)} ms`);
}
await cp.stop();
fs.rmSync(dir, { recursive: true, force: true });
