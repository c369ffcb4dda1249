// Network gateways: for file mode from `--network-gateway net=address:port` (repeatable), for
// Kubernetes from each cluster's registration (flag, clusters file or Secret), parsed by the same
// `parseGateway`; both end up in LoadResult.networkGateways.
import { isIP } from 'node:net';

export type NetworkGateways = Record<string, Array<{ address: string; port: number }>>;

/**
 * One gateway as `address:port` (IPv6 as `[addr]:port`), from a flag, a clusters file or a cluster
 * Secret; throws a message saying what is wrong.
 */
export function parseGateway(text: string): { address: string; port: number } {
  const i = text.lastIndexOf(':');
  const rawAddress = text.slice(0, i);
  const rawPort = text.slice(i + 1);
  if (i <= 0 || !/^\d+$/.test(rawPort)) throw new Error(`gateway must be host:port, got ${JSON.stringify(text)}`);
  const address = rawAddress.replace(/^\[|\]$/g, '');
  const port = Number(rawPort);
  // gRPC accepts only IP literals in EDS, so a gateway must be one.
  if (!isIP(address)) throw new Error(`gateway address must be an IP address (got "${rawAddress}")`);
  if (port < 1 || port > 65535) throw new Error(`gateway port must be from 1 to 65535 (got ${rawPort})`);
  return { address, port };
}

/** Parses one `network=address:port` and adds it to `into`; throws a message saying what is wrong. */
export function addNetworkGateway(text: string, into: NetworkGateways = {}): NetworkGateways {
  const m = /^([A-Za-z0-9][-A-Za-z0-9_.]*)=(.+)$/.exec(text);
  if (!m) throw new Error(`expected network=address:port, e.g. network2=192.0.2.10:15443 (got "${text}")`);
  const [, network, gateway] = m;
  const { address, port } = parseGateway(gateway);
  const list = [...(into[network] ?? [])];
  if (!list.some((g) => g.address === address && g.port === port)) list.push({ address, port });
  return { ...into, [network]: list };
}
