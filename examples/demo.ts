// npm run demo [-- --seconds N] [--no-shift] [--log-level L] [--backends-only]
//
// A live canary on your terminal: real reviews v1/v2/v3 (and the other bookinfo
// services) run on free local ports, meshpilot serves a temp copy of
// examples/bookinfo pointing at them, and two proxyless gRPC clients call
// reviews through xDS. Once a second the demo prints where their calls landed.
// Halfway through it rewrites the canary from 90/10 to 50/50 in the config
// directory; meshpilot pushes the change and the split shifts without restarts.
//
// --backends-only starts just the instances, on the fixed ports named in
// examples/bookinfo/services.yaml, so `npm start` has live endpoints.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { adminHint } from '../control-plane/observe/admin-url.ts';
import { startBackends, type BackendSet } from '../test/helpers/backends.ts';
import { replaceFile, targetOf } from '../test/helpers/mesh-files.ts';
import { waitFor } from '../test/helpers/wait.ts';
import { createXdsClient, type XdsClient } from '../test/helpers/xds-client.ts';
import { bar, isInterrupted, onShutdown, pause, secondsArg, shutdown } from './lib/demo-run.ts';
import {
  BOOKINFO_DIR,
  CANARY_FILE,
  materializeConfig,
  readExampleEndpoints,
  setRouteWeights,
} from './lib/bookinfo.ts';

const CALLS_PER_TICK = 100;
const VERSIONS = ['v1', 'v2', 'v3'];

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    'no-shift': { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'warn' },
    'backends-only': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(`usage: npm run demo -- [--seconds N] [--no-shift] [--log-level LEVEL] [--backends-only]
  --seconds N        run for N seconds (default 20; Ctrl-C stops earlier)
  --no-shift         keep the 90/10 canary instead of moving it to 50/50 halfway
  --log-level LEVEL  control plane log level (default warn)
  --backends-only    only start the example instances on their fixed ports (for npm start)`);
  process.exit(0);
}

const seconds = secondsArg(args.seconds);

function formatSplit(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const parts = VERSIONS.map((v) => {
    const share = total ? (counts[v] ?? 0) / total : 0;
    return `${v} ${bar(share)} ${String(Math.round(share * 100)).padStart(3)}%`;
  });
  const errors = Object.entries(counts).filter(([k]) => !VERSIONS.includes(k));
  for (const [key, n] of errors) parts.push(`${key} x${n}`);
  return parts.join('  ');
}

async function startInstances(fixedPorts: boolean): Promise<BackendSet> {
  const endpoints = await readExampleEndpoints(BOOKINFO_DIR);
  const set = await startBackends(
    endpoints.map((ep) => ({ service: ep.service, version: ep.version, port: fixedPorts ? ep.port : 0 })),
  );
  onShutdown(() => set.stop());
  return set;
}

async function backendsOnly(): Promise<void> {
  const set = await startInstances(true);
  for (const b of set.backends) console.log(`${b.service} ${b.version} listening on ${b.address}`);
  console.log(`running for ${seconds} s (Ctrl-C to stop)`);
  await pause(seconds * 1000);
}

async function demo(): Promise<void> {
  const set = await startInstances(false);
  console.log(`started ${set.backends.length} instances: ` +
    set.backends.map((b) => `${b.service}-${b.version}@${b.port}`).join(' '));

  const configDir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-demo-'));
  onShutdown(() => rm(configDir, { recursive: true, force: true }));
  await materializeConfig(BOOKINFO_DIR, configDir, (service, version) => set.get(service, version).port);

  const cp: ControlPlane = await startControlPlane({
    configDir,
    xdsListen: '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
    logLevel: args['log-level'],
  });
  onShutdown(() => cp.stop());
  console.log(`meshpilot serving xDS on ${cp.xdsAddress}, config in ${configDir}`);
  // Watch the clients connect and ACK while the demo runs: curl <url>/debug/proxies
  if (cp.adminAddress) console.log(adminHint(cp.adminAddress));

  const target = targetOf('reviews');
  const plain = createXdsClient({ xdsAddress: cp.xdsAddress, labels: { app: 'productpage', version: 'v1' } });
  const jason = createXdsClient({ xdsAddress: cp.xdsAddress, labels: { app: 'productpage', version: 'v1' } });
  const clients: Array<{ name: string; client: XdsClient; headers?: Record<string, string> }> = [
    { name: 'plain', client: plain },
    { name: 'jason', client: jason, headers: { 'end-user': 'jason' } },
  ];
  for (const c of clients) onShutdown(() => c.client.close());

  await waitFor(async () => (await plain.call(target)).service === 'reviews', {
    timeoutMs: 20_000,
    intervalMs: 200,
    description: `first call to ${target}`,
  });
  console.log(`clients: "plain" (no headers) and "jason" (end-user: jason) calling ${target}`);
  console.log(`rules: ${CANARY_FILE} sends jason to v2 and everyone else 90% v1 / 10% v3\n`);

  const shiftAt = args['no-shift'] ? Infinity : Math.floor(seconds / 2);
  for (let tick = 1; tick <= seconds && !isInterrupted(); tick++) {
    const tickStart = Date.now();
    const splits = await Promise.all(
      clients.map((c) => c.client.split(target, CALLS_PER_TICK, c.headers)),
    );
    if (isInterrupted()) break;
    clients.forEach((c, i) => {
      console.log(`${String(tick).padStart(3)}s  ${c.name.padEnd(5)}  ${formatSplit(splits[i]!)}`);
    });
    if (tick === shiftAt) {
      const canaryPath = path.join(configDir, CANARY_FILE);
      const updated = setRouteWeights(await readFile(canaryPath, 'utf8'), 'v3-canary', { v1: 50, v3: 50 });
      await replaceFile(configDir, CANARY_FILE, updated);
      console.log(`\n>>> rewrote ${CANARY_FILE}: v1 50% / v3 50% (live push, nothing restarted)\n`);
    }
    if (!(await pause(Math.max(0, 1000 - (Date.now() - tickStart))))) break;
  }
}

try {
  await (args['backends-only'] ? backendsOnly() : demo());
  await shutdown(0);
} catch (err) {
  console.error('demo failed:', err instanceof Error ? err.message : err);
  await shutdown(1);
}
