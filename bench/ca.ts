// npm run bench:ca [-- --count 2000 --concurrency 16]
//
// Mesh CA signing throughput (ECDSA P-256): certificates per second signed in-process (one at a
// time, and with requests in flight together, as a busy CA sees them), and over gRPC + TLS on
// 127.0.0.1 port 0 (bootstrap token, real grpc-js client, CSR checked, chain returned). Printed next
// to the same run's lower bound: node:crypto signing the same to-be-signed bytes with the same key
// (and, since a CA must check each CSR's signature, sign + one verify). The target is
// >= 500 certificates/s.
//
// Then the agent's memory (--renewals 20, --cert-ttl-ms 2000): one `meshpilot agent` (startAgent,
// with its SDS server) in a child process of its own, against a control plane with the mesh CA
// (serve --xds-tls) in this process; RSS and heap (after a full GC) after its first certificate and
// after N renewals, next to a bare Node process's RSS (the lower bound) and Node with the tsx
// loader (what the agent child here starts from; bin/meshpilot.js runs compiled dist/ without it).
// Everything stops by itself.
import { execFileSync, spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, sign, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Authority } from '../control-plane/ca/authority.ts';
import { BootstrapTokens } from '../control-plane/ca/bootstrap-tokens.ts';
import { caServiceDefinition, caServiceHandlers } from '../control-plane/ca/ca-service.ts';
import { XdsTlsCredentials } from '../control-plane/ca/tls-credentials.ts';
import { createLogger } from '../control-plane/log.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { caClient, createCertificate } from '../test/helpers/ca-client.ts';
import { workloadCsr } from '../test/helpers/ca-certs.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const COUNT = arg('count', 2000);
const CONCURRENCY = arg('concurrency', 16);
const RENEWALS = arg('renewals', 20);
const CERT_TTL_MS = arg('cert-ttl-ms', 2000);
const ID = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'productpage' };

/** The first element of a DER SEQUENCE (a certificate's tbsCertificate), header included. */
function firstElement(der: Buffer): Buffer {
  const inner = (off: number) => {
    const len0 = der[off + 1]!;
    if (len0 < 0x80) return { start: off + 2, len: len0 };
    const n = len0 & 0x7f;
    return { start: off + 2 + n, len: der.subarray(off + 2, off + 2 + n).readUIntBE(0, n) };
  };
  const outer = inner(0);
  const tbs = inner(outer.start);
  return der.subarray(outer.start, tbs.start + tbs.len);
}

async function rate(n: number, concurrency: number, one: (i: number) => Promise<unknown> | unknown): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await one(next++);
  }));
  return n / ((performance.now() - t0) / 1000);
}

async function main() {
  const log = createLogger('warn');
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-bench-ca-'));
  try {
    const ca = await Authority.open(join(dir, 'ca'), { trustDomain: 'cluster.local' });
    // Clients make their keys and CSRs; the CA's cost is what is measured, so they are made first.
    const csrs = await Promise.all(Array.from({ length: 64 }, () => workloadCsr(['spiffe://cluster.local/ns/default/sa/productpage'])));
    const csr = (i: number) => csrs[i % csrs.length]!.csrPem;
    for (let i = 0; i < 50; i++) await ca.sign(csr(i), ID); // warm-up (JIT, ASN.1 schemas)

    const sequential = await rate(COUNT, 1, (i) => ca.sign(csr(i), ID));
    const parallel = await rate(COUNT, CONCURRENCY, (i) => ca.sign(csr(i), ID));

    // Lower bound: the same TBS bytes signed with the same key by node:crypto, and one CSR verify.
    const leaf = new X509Certificate((await ca.sign(csr(0), ID)).chain[0]!);
    const tbs = firstElement(leaf.raw);
    const key = createPrivateKey(readFileSync(join(dir, 'ca', 'root-key.pem')));
    const rawSign = await rate(COUNT * 5, 1, () => sign('sha256', tbs, key));
    const csrDer = Buffer.from(csr(0).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const csrTbs = firstElement(csrDer);
    const csrSig = Buffer.from(new (await import('@peculiar/x509')).Pkcs10CertificateRequest(csr(0)).signature);
    const csrKey = createPublicKey({ key: Buffer.from(new (await import('@peculiar/x509')).Pkcs10CertificateRequest(csr(0)).publicKey.rawData), format: 'der', type: 'spki' });
    const rawSignVerify = await rate(COUNT * 2, 1, () => {
      if (!verify('sha256', csrTbs, { key: csrKey, dsaEncoding: 'der' }, csrSig)) throw new Error('csr signature did not verify');
      return sign('sha256', tbs, key);
    });

    // Over gRPC + TLS: the service as meshpilot serves it.
    const tokens = join(dir, 'tokens');
    writeFileSync(tokens, 'bench-token default productpage\n', { mode: 0o600 });
    const tls = await XdsTlsCredentials.create(ca, log);
    const server = new grpc.Server();
    server.addService(caServiceDefinition(), caServiceHandlers({ authority: ca, tokens: [new BootstrapTokens(tokens, 'cluster.local', log)], log }));
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', tls.credentials, (e, p) => (e ? reject(e) : resolve(p))));
    const client = caClient(`127.0.0.1:${port}`, { rootPem: ca.bundlePem() });
    for (let i = 0; i < 50; i++) await createCertificate(client, csr(i), { token: 'bench-token' });
    const overGrpc = await rate(COUNT, CONCURRENCY, (i) => createCertificate(client, csr(i), { token: 'bench-token' }));
    client.close();
    server.forceShutdown();
    tls.close();

    const f = (x: number) => `${Math.round(x)}/s`;
    console.log(`mesh CA signing, ECDSA P-256, ${COUNT} certificates per figure, ${availableParallelism()} cores, load ${loadavg()[0]!.toFixed(2)}`);
    console.log(`  in-process, one at a time        ${f(sequential)}`);
    console.log(`  in-process, ${CONCURRENCY} in flight          ${f(parallel)}`);
    console.log(`  gRPC + TLS, ${CONCURRENCY} in flight, 1 channel ${f(overGrpc)}`);
    console.log(`  lower bound: node:crypto sign of the same TBS bytes         ${f(rawSign)}`);
    console.log(`  lower bound: node:crypto CSR verify + sign (what a CA must do) ${f(rawSignVerify)}`);
    console.log(`  target >= 500/s: ${Math.min(sequential, parallel, overGrpc) >= 500 ? 'met' : 'NOT met'} (slowest figure ${f(Math.min(sequential, parallel, overGrpc))})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Mem { phase: string; renewals: number; rss: number; heapUsed: number; heapTotal: number; external: number }

/** RSS of a Node process that does nothing (with these flags), measured by itself. */
function bareRss(flags: string[]): number {
  const out = execFileSync(process.execPath, [...flags, '-e', 'process.stdout.write(String(process.memoryUsage().rss))'], { encoding: 'utf8' });
  return Number(out);
}

/** One agent in a child process against a control plane with the mesh CA in this one. */
async function agentMemory(): Promise<Mem[]> {
  const dir = mkdtempSync(join(tmpdir(), 'meshpilot-bench-agent-'));
  const log = createLogger('warn');
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, 'bench-token default productpage\n', { mode: 0o600 });
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'bench-token\n');
  const rules = join(dir, 'rules');
  (await import('node:fs')).mkdirSync(rules);
  const cp = await startControlPlane({ configDir: rules, xdsListen: '127.0.0.1:0', adminListen: null, logger: log, xdsTls: { dir: join(dir, 'ca'), tokensFile: tokens, workloadCertTtlMs: CERT_TTL_MS } });
  try {
    const config = { address: cp.xdsAddress, bundle: readFileSync(cp.ca!.trustBundlePath, 'utf8'), tokenFile, outDir: join(dir, 'certs'), sdsSocket: join(dir, 'sds.sock'), renewals: RENEWALS };
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', new URL('./ca-agent-child.ts', import.meta.url).pathname, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Mem[] = [];
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        out.push(JSON.parse(buf.slice(0, nl)) as Mem);
        buf = buf.slice(nl + 1);
      }
    });
    const timeout = setTimeout(() => child.kill(), 60_000 + RENEWALS * CERT_TTL_MS);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(timeout);
    if (code !== 0) throw new Error(`agent child exited with ${code}`);
    return out;
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
{
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
  const bare = bareRss([]);
  const tsx = bareRss(['--import', 'tsx']);
  const mem = await agentMemory();
  console.log(`agent memory: one meshpilot agent (certificates + SDS server) in its own process, mesh CA in this one, certificates live ${CERT_TTL_MS} ms`);
  console.log(`  lower bound: bare node RSS ${mb(bare)}; node --import tsx (the child's loader) RSS ${mb(tsx)}`);
  for (const m of mem) {
    const when = m.phase === 'first' ? 'after first certificate' : `after ${m.renewals} renewals`;
    console.log(`  ${when.padEnd(24)} RSS ${mb(m.rss)} (+${mb(m.rss - bare)} over bare node)  heap used ${mb(m.heapUsed)} / ${mb(m.heapTotal)}  external ${mb(m.external)}`);
  }
}
