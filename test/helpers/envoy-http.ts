// Plain HTTP/1.1 backends and a client for Envoy-in-the-loop tests: the HTTP counterparts of
// test/helpers/backends.ts (gRPC Echo) and xds-client.ts. A backend answers 200 with a JSON body
// naming its service, version and instance and echoing the request headers, so a test counts
// where requests landed; it records what it received (mirror copies included).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Wait this many milliseconds (at most 60 s) before answering. */
export const DELAY_HEADER = 'x-delay-ms';
/** Answer 503 to the first request carrying a given value of this header, 200 to later ones. */
export const FAIL_FIRST_HEADER = 'x-fail-first';

export interface HttpReply {
  service: string;
  version: string;
  instance: string;
  headers: Record<string, string>;
}

export interface HttpBackend {
  service: string;
  version: string;
  /** Bound port, on `host`. */
  port: number;
  host: string;
  instance: string;
  /** Requests received, in order: their Host header and all headers. */
  received: Array<{ host: string; headers: Record<string, string> }>;
  stop(): Promise<void>;
}

export interface HttpBackendOptions {
  service: string;
  version: string;
  host?: string;
  port?: number;
  /** Answer every request with this status (a broken endpoint). */
  failWith?: number;
}

export async function startHttpBackend(o: HttpBackendOptions): Promise<HttpBackend> {
  const host = o.host ?? '127.0.0.1';
  const seenFailFirst = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  const received: HttpBackend['received'] = [];
  let instance = `${o.service}-${o.version}`;
  const server = http.createServer((req, res) => {
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
    received.push({ host: headers.host ?? '', headers });
    req.resume();
    const answer = () => {
      const key = headers[FAIL_FIRST_HEADER];
      let status = o.failWith ?? 200;
      if (status === 200 && key !== undefined && !seenFailFirst.has(key)) {
        seenFailFirst.add(key);
        status = 503;
      }
      const body: HttpReply = { service: o.service, version: o.version, instance, headers };
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const delay = Math.min(Number(/^\d+$/.test(headers[DELAY_HEADER] ?? '') ? headers[DELAY_HEADER] : 0), 60_000);
    if (!delay) return answer();
    const t = setTimeout(() => {
      timers.delete(t);
      answer();
    }, delay);
    timers.add(t);
    res.on('close', () => {
      clearTimeout(t);
      timers.delete(t);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  instance = `${o.service}-${o.version}@${host}:${port}`;
  return {
    service: o.service,
    version: o.version,
    port,
    host,
    get instance() {
      return instance;
    },
    received,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface HttpResult {
  status: number;
  /** The backend's reply (2xx-5xx from a backend), when the body was one. */
  reply?: HttpReply;
  body: string;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

/**
 * Sends HTTP/1.1 to an Envoy entry listener with this Host header (the service meshpilot routes
 * by, e.g. `reviews.default.svc.cluster.local:9080`). One keep-alive agent per client.
 */
export class EntryClient {
  private agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(readonly address: string, readonly port: number) {}

  request(host: string, headers: Record<string, string> = {}, opts: { path?: string; method?: string; timeoutMs?: number } = {}): Promise<HttpResult> {
    const start = performance.now();
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: this.address, port: this.port, path: opts.path ?? '/', method: opts.method ?? 'GET', agent: this.agent, headers: { ...headers, host } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString();
            let reply: HttpReply | undefined;
            if (String(res.headers['content-type'] ?? '').includes('application/json')) {
              try {
                reply = JSON.parse(body) as HttpReply;
              } catch {
                reply = undefined;
              }
            }
            resolve({ status: res.statusCode ?? 0, body, headers: res.headers, ms: performance.now() - start, ...(reply ? { reply } : {}) });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(opts.timeoutMs ?? 20_000, () => req.destroy(new Error(`no answer from ${this.address}:${this.port} within ${opts.timeoutMs ?? 20_000} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * `n` requests, `concurrency` at a time: counts by outcome, `v1`.. for a backend's 200 (its
   * version) and `status:<code>` for anything else.
   */
  async split(host: string, n: number, headers: Record<string, string> = {}, concurrency = 8): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        const r = await this.request(host, headers);
        const key = outcome(r);
        counts[key] = (counts[key] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    return counts;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** `v1` for a backend's 200 answer, `status:<code>` otherwise. */
export function outcome(r: HttpResult): string {
  return r.status === 200 && r.reply ? r.reply.version : `status:${r.status}`;
}
