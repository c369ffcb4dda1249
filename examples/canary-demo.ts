// npm run demo:canary [-- --seconds N] [--interval D] [--healthy] [--log-level L]
//
// A canary rolled out, and rolled back, live in your terminal. Real gRPC instances of the mesh in
// examples/canary run on free ports; reviews v2, the canary, fails 30% of its calls with
// UNAVAILABLE. meshpilot serves a temp copy of examples/canary (its Canary's interval shortened)
// with a state directory, and a proxyless gRPC client (@grpc/grpc-js-xds) calls reviews without
// pause. The client reports its load to meshpilot (LRS); meshpilot judges each step from those
// reports alone and rolls the canary back. Once a second the demo prints where the client's calls
// landed; each change of the Canary is printed as `meshpilot wait --canary` prints it.
// --healthy: v2 answers every call, and the canary goes through every step to 100%.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { createLogger } from '../control-plane/log.ts';
import { adminHint, adminUrl } from '../control-plane/observe/admin-url.ts';
import { parseDuration } from '../control-plane/observe/wait.ts';
import { waitForCanary, type CanaryWaitResult } from '../control-plane/rollout/canary-wait.ts';
import { startBackends, type BackendSet } from '../test/helpers/backends.ts';
import { targetOf } from '../test/helpers/mesh-files.ts';
import { waitFor } from '../test/helpers/wait.ts';
import { createXdsClient } from '../test/helpers/xds-client.ts';
import { bar, isInterrupted, onShutdown, pause, secondsArg, shutdown } from './lib/demo-run.ts';
import { materializeConfig, readExampleEndpoints } from './lib/bookinfo.ts';

/** The mesh with a Canary (reviews: v1 stable, v2 canary, on route reviews-canary). */
const CANARY_DIR = fileURLToPath(new URL('./canary', import.meta.url));
const CANARY_FILE = 'canary.yaml';
const CALLS_PER_TICK = 200;
/** What the broken canary fails, as the acceptance test has it. */
const FAIL_SHARE = 0.3;

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    interval: { type: 'string', default: '2s' },
    healthy: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'warn' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(`usage: npm run demo:canary -- [--seconds N] [--interval D] [--healthy] [--log-level LEVEL]
  --seconds N        stop after N seconds at the latest (default 60; Ctrl-C stops earlier)
  --interval D       the Canary's interval, e.g. 2s (default 2s; examples/canary says 10s)
  --healthy          v2 answers every call: the canary is promoted instead of rolled back
  --log-level LEVEL  control plane log level (default warn; info shows its step lines)`);
  process.exit(0);
}

const seconds = secondsArg(args.seconds);

/** `v1 ██████████████████·· 90%  v2 ██·················· 10%  failed   3%`. */
function formatSplit(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0) || 1;
  const failed = Object.entries(counts).filter(([k]) => k.startsWith('error:')).reduce((a, [, n]) => a + n, 0);
  const pct = (n: number) => `${String(Math.round((n / total) * 100)).padStart(3)}%`;
  return ['v1', 'v2'].map((v) => `${v} ${bar((counts[v] ?? 0) / total)} ${pct(counts[v] ?? 0)}`).join('  ') + `  failed ${pct(failed)}`;
}

/** The Canary's interval set to `interval` (comments kept). */
async function setCanaryInterval(configDir: string, interval: string): Promise<void> {
  const file = path.join(configDir, CANARY_FILE);
  const doc = parseDocument(await readFile(file, 'utf8'));
  doc.setIn(['spec', 'interval'], interval);
  await writeFile(file, doc.toString({ lineWidth: 0 }));
}

async function demo(): Promise<void> {
  parseDuration(args.interval); // a bad --interval fails here, before anything starts
  const endpoints = await readExampleEndpoints(CANARY_DIR);
  const failShare = args.healthy ? 0 : FAIL_SHARE;
  const set: BackendSet = await startBackends(
    endpoints.map((ep) => ({ service: ep.service, version: ep.version, ...(ep.service === 'reviews' && ep.version === 'v2' ? { failShare } : {}) })),
  );
  onShutdown(() => set.stop());
  console.log(`reviews v1 (stable) on ${set.get('reviews', 'v1').address}; reviews v2 (canary) on ${set.get('reviews', 'v2').address}, failing ${Math.round(failShare * 100)}% of its calls`);

  const work = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-canary-demo-'));
  onShutdown(() => rm(work, { recursive: true, force: true }));
  const configDir = path.join(work, 'rules');
  await materializeConfig(CANARY_DIR, configDir, (service, version) => set.get(service, version).port);
  await setCanaryInterval(configDir, args.interval);

  const cp: ControlPlane = await startControlPlane({
    configDir,
    stateDir: path.join(work, 'state'),
    xdsListen: '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
    // One-line logs (as serve --log-format pretty), not JSON, between the demo's lines.
    logger: createLogger(args['log-level'], 'pretty'),
    // Load reports every second (default 10 s), so each short step has fresh figures.
    loadReporting: { intervalMs: 1000 },
  });
  onShutdown(() => cp.stop());
  if (!cp.adminAddress) throw new Error('the control plane has no admin API');
  console.log(`meshpilot serving xDS on ${cp.xdsAddress}, rules in ${configDir}, rollout state in ${path.join(work, 'state')}`);
  console.log(adminHint(cp.adminAddress));
  const admin = adminUrl(cp.adminAddress);
  console.log(`try: meshpilot canary status --admin ${admin}\n`);

  const target = targetOf('reviews');
  const client = createXdsClient({ xdsAddress: cp.xdsAddress, labels: { app: 'productpage', version: 'v1' } });
  onShutdown(() => client.close());
  await waitFor(async () => (await client.call(target)).service === 'reviews', { timeoutMs: 20_000, intervalMs: 200, description: `first call to ${target}` });
  console.log(`client calling ${target}; Canary default/reviews: steps 10, 25, 50, 100 every ${args.interval}, at least 99% success\n`);

  // The canary as `meshpilot wait --canary` follows it, next to the client's own view.
  let outcome: CanaryWaitResult | undefined;
  const watching = waitForCanary({
    admin,
    namespace: 'default',
    name: 'reviews',
    timeoutMs: seconds * 1000,
    intervalMs: 200,
    onChange: (line) => console.log(`\n>>> ${line}\n`),
  }).then((r) => (outcome = r));

  const started = Date.now();
  let after = 0; // ticks shown after the outcome: traffic has settled where the outcome put it
  for (let tick = 1; !isInterrupted() && Date.now() - started < seconds * 1000 && after < 3; tick++) {
    const tickStart = Date.now();
    const split = await client.split(target, CALLS_PER_TICK);
    console.log(`${String(tick).padStart(3)}s  ${formatSplit(split)}`);
    if (outcome) after++;
    if (!(await pause(Math.max(0, 1000 - (Date.now() - tickStart))))) break;
  }
  if (!outcome && !isInterrupted()) await Promise.race([watching, pause(1000)]);
  if (outcome) console.log(`\n${outcome.message}${outcome.outcome === 'rolledBack' ? ' (wait --canary exits 3)' : outcome.outcome === 'promoted' ? ' (wait --canary exits 0)' : ''}`);
  else console.log('\nno outcome before the demo stopped');
}

try {
  await demo();
  await shutdown(0);
} catch (err) {
  console.error('demo failed:', err instanceof Error ? err.message : err);
  await shutdown(1);
}
