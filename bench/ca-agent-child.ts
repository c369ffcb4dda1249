// Child process of bench/ca.ts: one `meshpilot agent` (startAgent, with its SDS server) against the
// bench's in-process mesh CA, reporting its own memory as JSON lines on stdout: after the first
// certificate, then after each renewal. A process of its own, so the figures are the agent's.
import { startAgent } from '../control-plane/agent/agent.ts';
import { createLogger } from '../control-plane/log.ts';

const o = JSON.parse(process.argv[2]!) as { address: string; bundle: string; tokenFile: string; outDir: string; sdsSocket: string; renewals: number };

function report(phase: string, renewals: number): void {
  (globalThis as { gc?: () => void }).gc?.(); // --expose-gc: heapUsed after a full collection
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ phase, renewals, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external })}\n`);
}

const agent = await startAgent({
  identity: { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'productpage' },
  ca: { address: o.address, caRootPem: o.bundle, tokenFile: o.tokenFile },
  outDir: o.outDir,
  sdsSocket: o.sdsSocket,
  validitySeconds: 3600,
  logger: createLogger('warn'),
  backoff: { initialMs: 100, maxMs: 400 },
});
await agent.certs.ready();
report('first', 0);
let renewals = 0;
await new Promise<void>((resolve) => {
  agent.certs.on('cert', () => {
    renewals++;
    if (renewals % 5 === 0 || renewals === o.renewals) report('renewed', renewals);
    if (renewals >= o.renewals) resolve();
  });
});
await agent.stop();
process.exit(0);
