// Network gateways for file mode, from `--network-gateway net=host:port` (repeatable). Kubernetes
// sources find them on their own; both end up in LoadResult.networkGateways.
import { isIP } from 'node:net';

export type NetworkGateways = Record<string, Array<{ address: string; port: number }>>;

/** Parses one `network=address:port` and adds it to `into`; throws a message saying what is wrong. */
export function addNetworkGateway(text: string, into: NetworkGateways = {}): NetworkGateways {
  const m = /^([A-Za-z0-9][-A-Za-z0-9_.]*)=(.+):(\d+)$/.exec(text);
  if (!m) throw new Error(`expected network=address:port, e.g. network2=192.0.2.10:15443 (got "${text}")`);
  const [, network, rawAddress, rawPort] = m;
  const address = rawAddress.replace(/^\[|\]$/g, '');
  const port = Number(rawPort);
  // gRPC accepts only IP literals in EDS, so a gateway must be one.
  if (!isIP(address)) throw new Error(`gateway address must be an IP address (got "${rawAddress}")`);
  if (port < 1 || port > 65535) throw new Error(`gateway port must be from 1 to 65535 (got ${rawPort})`);
  const list = [...(into[network] ?? [])];
  if (!list.some((g) => g.address === address && g.port === port)) list.push({ address, port });
  return { ...into, [network]: list };
}
