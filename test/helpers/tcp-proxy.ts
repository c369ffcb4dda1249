// A TCP forwarder on a fixed loopback port, standing in for a Kubernetes Service in front of
// control-plane replicas: new connections go to the current target; `retarget` changes it (the
// Service's endpoints changed). Connections already open stay on their replica until either side
// closes them, as kube-proxy's do.
import net from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:port`, what clients dial. */
  readonly address: string;
  /** Connections opened so far, by the target they were forwarded to. */
  readonly opened: Record<string, number>;
  retarget(target: string): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  let current = target;
  const opened: Record<string, number> = {};
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = net.createServer((down) => {
    track(down);
    const to = current;
    opened[to] = (opened[to] ?? 0) + 1;
    const i = to.lastIndexOf(':');
    const up = net.connect({ host: to.slice(0, i), port: Number(to.slice(i + 1)) });
    track(up);
    down.pipe(up);
    up.pipe(down);
    // Either side going away takes the other with it (a replica that stopped, a client that left).
    const cut = () => {
      down.destroy();
      up.destroy();
    };
    down.on('error', cut).on('close', cut);
    up.on('error', cut).on('close', cut);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    opened,
    retarget(t: string) {
      current = t;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
