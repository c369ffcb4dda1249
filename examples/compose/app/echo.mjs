// A tiny HTTP service for the compose example: it answers with who it is (service and version),
// the request it got (path and headers) and, when it has an upstream, what its upstream answered.
// It calls the upstream plainly, http://<UPSTREAM>/<path>, as an app in a meshed pod does: the pod's
// redirect (iptables, set up by its init container) hands the connection to its Envoy sidecar, whose
// routes from meshpilot (canary split, header routes, faults, rate limits) decide where it goes, by
// the Host header; Envoy then calls the chosen pod over mutual TLS.
//
//   SERVICE=reviews VERSION=v2 UPSTREAM=ratings:9080 node echo.mjs
//   node echo.mjs --check    # healthcheck: this app answers, and its sidecar is ready (SIDECAR_READY)
//
// The answer is JSON; with `accept: text/plain` it is only the chain, one line
// ("productpage-v1 -> reviews-v3 -> ratings-v1"), for counting in shell loops.
//
// Environment: SERVICE, VERSION, PORT (default 9080; 0 picks a free port, printed on stdout),
// HOST (default 0.0.0.0), UPSTREAM (host:port, optional), SIDECAR_READY (default
// http://127.0.0.1:15021/healthz/ready, empty to skip in --check), UPSTREAM_TIMEOUT_MS (10000).
// Node's standard library only.
import http from 'node:http';

const env = process.env;
const SERVICE = env.SERVICE || 'echo';
const VERSION = env.VERSION || 'v1';
const WORKLOAD = `${SERVICE}-${VERSION}`;
const PORT = Number(env.PORT ?? 9080);
const HOST = env.HOST || '0.0.0.0';
const UPSTREAM = env.UPSTREAM || '';
const SIDECAR_READY = env.SIDECAR_READY ?? 'http://127.0.0.1:15021/healthz/ready';
const UPSTREAM_TIMEOUT_MS = Number(env.UPSTREAM_TIMEOUT_MS || 10_000);
// Headers a meshed app passes on to its upstream, so header routes and faults see the end user.
const PROPAGATE = ['end-user', 'x-request-id', 'traceparent', 'tracestate'];

/** GET http://UPSTREAM/path (through the sidecar, by the pod's redirect); resolves to { status, body } or { error }. */
function callUpstream(path, incoming) {
  const target = new URL(`http://${UPSTREAM}`);
  const headers = { host: UPSTREAM, accept: 'application/json' };
  for (const h of PROPAGATE) if (incoming[h] !== undefined) headers[h] = incoming[h];
  return new Promise((resolve) => {
    const req = http.request({ host: target.hostname, port: target.port || 80, method: 'GET', path, headers, timeout: UPSTREAM_TIMEOUT_MS }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = text;
        try { body = JSON.parse(text); } catch { /* a proxy's own answer (fault, 429) is text */ }
        resolve({ status: res.statusCode, body });
      });
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${UPSTREAM_TIMEOUT_MS} ms`)));
    req.on('error', (e) => resolve({ error: e.message }));
    req.end();
  });
}

/** "productpage-v1 -> reviews-v3 -> ratings-v1", or where the chain stopped and why. */
function chainOf(upstream) {
  if (!upstream) return WORKLOAD;
  if (upstream.error) return `${WORKLOAD} -> ${UPSTREAM} unreachable (${upstream.error})`;
  if (upstream.body && typeof upstream.body === 'object' && typeof upstream.body.chain === 'string') return `${WORKLOAD} -> ${upstream.body.chain}`;
  const text = String(upstream.body).trim().slice(0, 80);
  return `${WORKLOAD} -> ${UPSTREAM} answered ${upstream.status}${text ? ` (${text})` : ''}`;
}

export function createServer() {
  return http.createServer(async (req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const upstream = UPSTREAM ? await callUpstream(req.url ?? '/', req.headers) : undefined;
    const answer = {
      chain: chainOf(upstream),
      service: SERVICE,
      version: VERSION,
      method: req.method,
      path: req.url,
      headers: req.headers,
      ...(upstream ? { upstream: { host: UPSTREAM, ...upstream } } : {}),
    };
    if (/\btext\/plain\b/.test(req.headers.accept ?? '')) {
      res.writeHead(upstream?.error ? 502 : 200, { 'content-type': 'text/plain' });
      res.end(answer.chain + '\n');
      return;
    }
    // The upstream's own status (a fault's 503, a rate limit's 429) is reported in the body; this
    // service answers 200 unless it could not reach its upstream at all.
    res.writeHead(upstream?.error ? 502 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer, null, 2) + '\n');
  });
}

async function check() {
  const targets = [`http://127.0.0.1:${PORT}/healthz`, ...(SIDECAR_READY ? [SIDECAR_READY] : [])];
  for (const url of targets) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
    if (!ok) {
      console.error(`not ready: ${url}`);
      process.exit(1);
    }
  }
  process.exit(0);
}

if (process.argv.includes('--check')) {
  await check();
} else {
  const server = createServer();
  server.listen(PORT, HOST, () => {
    const { port } = server.address();
    console.log(`${WORKLOAD} listening on ${HOST}:${port}${UPSTREAM ? `, upstream ${UPSTREAM}` : ''}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
