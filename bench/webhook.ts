// npm run bench:webhook [-- --rate 200 --seconds 10 --warmup-seconds 2]
//
// Admission webhook latency at a steady request rate. Starts the webhook server in a child process
// (bench/webhook-server.ts: what `meshpilot webhook` runs, HTTPS with a CA made for the run, static
// namespace labels instead of an API server) on 127.0.0.1 port 0, then sends AdmissionReviews for distinct pods that all get injected (the
// costly path) at a fixed rate over keep-alive connections, as the API server does. Open loop:
// each request's latency counts from when it was due, so a stalled server cannot hide its queue.
// Prints p50/p90/p99/max as the client sees them, and the time inside the server (its onAdmission
// hook); the target is p99 <= 10 ms at 200 admissions/s. Stops by itself.
import { fork } from 'node:child_process';
import https from 'node:https';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCA, issueServingCert } from '../control-plane/tls/certs.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface WebhookBenchOptions {
  rate: number;
  seconds: number;
  warmupSeconds: number;
}

export interface WebhookBenchResult extends WebhookBenchOptions {
  sent: number;
  failed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Inside the server (onAdmission): from the request's arrival to the answer written. */
  server: { p50: number; p99: number; max: number };
  /** 1-minute load average before and after (other work on the machine shows up in the tail). */
  load: [number, number];
  firstError?: string;
}

function review(i: number): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${i}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'bench',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { generateName: `svc-${i % 50}-7d9c-`, namespace: 'bench', labels: { app: `svc-${i % 50}`, version: `v${i % 3}`, 'pod-template-hash': '7d9c' } },
        spec: {
          serviceAccountName: `svc-${i % 50}`,
          containers: [{ name: 'app', image: 'example.com/app:1', ports: [{ containerPort: 8080, name: 'http' }], env: [{ name: 'MODE', value: 'bench' }], resources: { requests: { cpu: '100m', memory: '64Mi' } } }],
        },
      },
    },
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;
}

export async function runWebhookBench(o: WebhookBenchOptions, log: (s: string) => void = () => {}): Promise<WebhookBenchResult> {
  const ca = await createCA('bench-webhook-ca');
  const served = await issueServingCert(ca, { ipAddresses: ['127.0.0.1'] });
  const child = fork(path.join(here, 'webhook-server.ts'), [], { execArgv: ['--import', 'tsx'], env: { ...process.env, BENCH_CERT: served.certPem, BENCH_KEY: served.keyPem }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (cmd: string) =>
    new Promise<any>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`webhook server: no ${cmd} within 30 s`)), 30_000);
      child.on('message', function on(m: { cmd: string }) {
        if (m.cmd !== cmd) return;
        clearTimeout(timer);
        child.off('message', on);
        resolve(m);
      });
    });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 32, ca: ca.certPem });
  try {
    const { url } = (await next('ready')) as { url: string };
    const post = (body: string) =>
      new Promise<void>((resolve, reject) => {
        const req = https.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const ok = res.statusCode === 200 && JSON.parse(Buffer.concat(chunks).toString()).response?.patchType === 'JSONPatch';
            if (ok) resolve();
            else reject(new Error(`status ${res.statusCode}`));
          });
        });
        req.on('error', reject);
        req.end(body);
      });

    const bodies = Array.from({ length: 500 }, (_, i) => review(i));
    const total = Math.round((o.warmupSeconds + o.seconds) * o.rate);
    const warmup = Math.round(o.warmupSeconds * o.rate);
    const interval = 1000 / o.rate;
    const latencies: number[] = [];
    let failed = 0;
    let firstError: string | undefined;
    const inflight: Promise<void>[] = [];
    const load0 = loadavg()[0]!;
    const t0 = performance.now();
    log(`webhook bench: ${o.rate}/s for ${o.warmupSeconds}s warm-up + ${o.seconds}s measured`);
    for (let i = 0; i < total; i++) {
      if (i === warmup) child.send({ cmd: 'reset' });
      const due = t0 + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      inflight.push(
        post(bodies[i % bodies.length]!).then(
          () => {
            if (i >= warmup) latencies.push(performance.now() - due);
          },
          (e: Error) => {
            if (i >= warmup) {
              failed++;
              firstError ??= e.message;
            }
          },
        ),
      );
    }
    await Promise.all(inflight);
    child.send({ cmd: 'stats' });
    const server = ((await next('stats')) as { ms: number[] }).ms.sort((a, b) => a - b);
    latencies.sort((a, b) => a - b);
    return { ...o, load: [load0, loadavg()[0]!], sent: total - warmup, failed, p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: latencies.at(-1) ?? NaN, server: { p50: percentile(server, 50), p99: percentile(server, 99), max: server.at(-1) ?? NaN }, ...(firstError ? { firstError } : {}) };
  } finally {
    agent.destroy();
    child.send({ cmd: 'stop' });
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await new Promise((r) => child.once('exit', r));
    clearTimeout(killer);
  }
}

export function formatWebhookBench(r: WebhookBenchResult): string {
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  return [
    `webhook admission latency at ${r.rate}/s (${r.sent} admissions over ${r.seconds}s, every pod injected, HTTPS keep-alive):`,
    `  p50 ${ms(r.p50)}  p90 ${ms(r.p90)}  p99 ${ms(r.p99)}  max ${ms(r.max)}  failed ${r.failed}${r.firstError ? ` (first: ${r.firstError})` : ''}`,
    `  inside the server: p50 ${ms(r.server.p50)}  p99 ${ms(r.server.p99)}  max ${ms(r.server.max)}`,
    `  machine load average ${r.load[0].toFixed(1)} -> ${r.load[1].toFixed(1)} on ${availableParallelism()} cores`,
    `  target p99 <= 10 ms: ${r.p99 <= 10 && r.failed === 0 ? 'met' : 'NOT met'}`,
  ].join('\n');
}

function arg(name: string, d: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await runWebhookBench({ rate: arg('rate', 200), seconds: arg('seconds', 10), warmupSeconds: arg('warmup-seconds', 2) }, (s) => process.stderr.write(`${s}\n`));
  console.log(formatWebhookBench(r));
  process.exit(0);
}
