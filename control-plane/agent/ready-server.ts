// The agent's readiness for the kubelet: GET /healthz/ready answers 200 once the agent holds a
// workload certificate (and, as it starts after the SDS server, once Envoy can fetch it), 503 until
// then. An injected pod's startup probe points here, so Envoy, started after the agent, finds its
// secrets ready on its first SDS request. Plain HTTP, no body worth reading: the kubelet only
// looks at the status.
import type { Logger } from '../log.ts';
import { formatHostPort, listenOn } from '../listen-error.ts';

export const AGENT_READY_PATH = '/healthz/ready';

export interface ReadyServer {
  /** host:port actually bound (port 0 picks one). */
  address: string;
  stop(): Promise<void>;
}

/** `host:port` (IPv6 hosts in brackets) to its parts; throws on anything else. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`expected host:port, e.g. 0.0.0.0:15020, got "${text}"`);
  return { host: (m[1] ?? m[2])!, port };
}

export async function startReadyServer(listen: { host: string; port: number }, hasCert: () => boolean, logger: Logger): Promise<ReadyServer> {
  const http = await import('node:http'); // here: `meshpilot agent --help` reads this module's flag parser
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== AGENT_READY_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const ready = hasCert();
    res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'no workload certificate yet\n');
  });
  await listenOn(server, listen.port, listen.host);
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : listen.port;
  const address = formatHostPort(listen.host, port);
  logger.info({ address, path: AGENT_READY_PATH }, 'agent: readiness endpoint listening');
  return {
    address,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
