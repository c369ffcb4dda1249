// Bootstraps for Envoy-in-the-loop tests (test/envoy-e2e.test.ts), derived from the sample
// sidecar bootstrap in sidecar-config/envoy-bootstrap.yaml. Pure: no process, no socket, so the
// test that runs without Envoy can check every bootstrap the Envoy suite would start.
//
// How traffic enters Envoy without iptables. meshpilot sends a sidecar Istio's layout:
// `virtualOutbound` on 0.0.0.0:15001 (use_original_dst, a TCP passthrough catch-all) and one
// listener per outbound HTTP port (`0.0.0.0_9080`, bind_to_port false) whose connection manager
// takes route config `9080` over ADS. Without a redirect nothing can reach `0.0.0.0_9080`: a
// request sent to 127.0.0.1:15001 finds no original destination and is passed through to itself.
// So the test bootstrap has NO LDS at all (it would also bind fixed ports on every interface) and
// instead carries one static listener per entry point, on a loopback port the test reserved,
// whose connection manager is the very one meshpilot generates for that listener (same HTTP
// filters, same `rds` over ADS): requests with `Host: reviews.default.svc.cluster.local:9080`
// follow meshpilot's routes, clusters and endpoints, received over ADS.
//
// The callee side works the same way: the connection manager of the virtualInbound filter chain
// for the workload port (RBAC, the service-wide rate limit, then `inbound|<port>||` to the app on
// 127.0.0.1:<port>), bound on the workload's own address (a second loopback IP, 127.0.0.2).
//
// mTLS between Envoys: the callee's entry is then virtualInbound's TLS chain for the port (STRICT:
// the only one), its `transport_socket` (DownstreamTlsContext, SDS `default`/`ROOTCA`, client
// certificate required) as well as its connection manager, and every bootstrap gets the sample's
// `sds-grpc` cluster pointed at that workload's agent socket.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { Resources } from '../../control-plane/translate/translate.ts';
import { DOWNSTREAM_TLS, SDS_CLUSTER } from '../../control-plane/translate/tls-context.ts';
import { HCM, LISTENER, ROUTE_CONFIG } from '../../control-plane/translate/type-urls.ts';

/** Envoy JSON as tests read it (fields looked up freely). */
export type Json = Record<string, any>;

export const BOOTSTRAP_TYPE = 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap';
export const SAMPLE_BOOTSTRAP = fileURLToPath(new URL('../../sidecar-config/envoy-bootstrap.yaml', import.meta.url));
export const XDS_CLUSTER = 'meshpilot-xds';
const HCM_FILTER = 'envoy.filters.network.http_connection_manager';

export interface Workload {
  pod: string;
  namespace: string;
  /** The IP in the node id (meshpilot reads it to find the workload's own service ports). */
  ip: string;
  labels: Record<string, string>;
}

/** meshpilot's (Istio's) sidecar node id: `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`. */
export function sidecarNodeId(w: Workload): string {
  return `sidecar~${w.ip}~${w.pod}.${w.namespace}~${w.namespace}.svc.cluster.local`;
}

/** The node as control-plane/translate/proxy.ts reads it (NAMESPACE, LABELS). */
export function sidecarNode(w: Workload): { id: string; cluster: string; metadata: Json } {
  return {
    id: sidecarNodeId(w),
    cluster: `${w.labels.app ?? w.pod}.${w.namespace}`,
    metadata: { NAMESPACE: w.namespace, LABELS: { ...w.labels } },
  };
}

/** A static listener on `address:port` (loopback) running one connection manager meshpilot generated. */
export interface EntryListener {
  name: string;
  address: string;
  port: number;
  /** The HttpConnectionManager (with `@type`), as found in translate() output. */
  hcm: Json;
  /** The filter chain's transport socket, as found in translate() output (mTLS entries only). */
  transportSocket?: Json;
}

/**
 * The outbound entry for a service port: meshpilot's `0.0.0.0_<port>` listener's connection
 * manager (route config `<port>` over ADS) on `address:listenPort`. Throws when translate()
 * has no such listener, or its routes are not the route config named by the port.
 */
export function outboundEntry(resources: Resources, servicePort: number, address: string, listenPort: number): EntryListener {
  const name = `0.0.0.0_${servicePort}`;
  const listener = resources[LISTENER].find((l) => l.name === name);
  if (!listener) throw new Error(`meshpilot sent no listener ${name} (has: ${resources[LISTENER].map((l) => l.name).join(', ')})`);
  const hcm = onlyHcm((listener.filter_chains as Json[] | undefined)?.[0], name);
  const rdsName = hcm.rds?.route_config_name;
  if (rdsName !== String(servicePort)) throw new Error(`${name}: expected rds route config "${servicePort}", found ${JSON.stringify(hcm.rds)}`);
  if (!resources[ROUTE_CONFIG].some((r) => r.name === rdsName)) throw new Error(`${name} names route config ${rdsName}, which meshpilot does not send`);
  return { name: `entry_outbound_${servicePort}`, address, port: listenPort, hcm };
}

/**
 * The inbound entry for a workload port: the connection manager of virtualInbound's plaintext
 * filter chain for `workloadPort` (PERMISSIVE: `raw_buffer`; DISABLE: the only one), bound on
 * `address:workloadPort` (the workload's own IP, as the ServiceEntry endpoint says).
 */
export function inboundEntry(resources: Resources, workloadPort: number, address: string): EntryListener {
  const vi = resources[LISTENER].find((l) => l.name === 'virtualInbound');
  if (!vi) throw new Error('meshpilot sent no virtualInbound listener');
  const chains = (vi.filter_chains as Json[]).filter((c) => c.filter_chain_match?.destination_port === workloadPort);
  const plain = chains.find((c) => !c.transport_socket && (c.filter_chain_match.transport_protocol ?? 'raw_buffer') === 'raw_buffer');
  if (!plain) throw new Error(`virtualInbound has no plaintext chain for port ${workloadPort} (chains: ${chains.map((c) => c.name).join(', ') || 'none'})`);
  return { name: `entry_inbound_${workloadPort}`, address, port: workloadPort, hcm: onlyHcm(plain, `virtualInbound port ${workloadPort}`) };
}

/**
 * The mTLS inbound entry for a workload port: virtualInbound's TLS chain for `workloadPort` (the
 * one with a DownstreamTlsContext: STRICT's only chain, PERMISSIVE's `tls` one), its connection
 * manager and its transport socket, bound on `address:workloadPort`.
 */
export function inboundTlsEntry(resources: Resources, workloadPort: number, address: string): EntryListener {
  const vi = resources[LISTENER].find((l) => l.name === 'virtualInbound');
  if (!vi) throw new Error('meshpilot sent no virtualInbound listener');
  const chains = (vi.filter_chains as Json[]).filter((c) => c.filter_chain_match?.destination_port === workloadPort);
  const tls = chains.find((c) => c.transport_socket?.typed_config?.['@type'] === DOWNSTREAM_TLS);
  if (!tls) throw new Error(`virtualInbound has no TLS chain for port ${workloadPort} (chains: ${chains.map((c) => c.name).join(', ') || 'none'})`);
  return {
    name: `entry_inbound_tls_${workloadPort}`,
    address,
    port: workloadPort,
    hcm: onlyHcm(tls, `virtualInbound TLS chain for port ${workloadPort}`),
    transportSocket: structuredClone(tls.transport_socket as Json),
  };
}

function onlyHcm(chain: Json | undefined, where: string): Json {
  const filters = (chain?.filters ?? []) as Json[];
  const hcm = filters.find((f) => f.name === HCM_FILTER)?.typed_config;
  if (!hcm || hcm['@type'] !== HCM) throw new Error(`${where}: no HTTP connection manager`);
  return structuredClone(hcm);
}

export interface TestBootstrapOptions {
  workload: Workload;
  /** meshpilot's plaintext xDS address, `127.0.0.1:PORT`. */
  xdsAddress: string;
  /** Delta xDS (`DELTA_GRPC`) instead of state of the world. */
  delta?: boolean;
  entries: EntryListener[];
  /** The workload's agent SDS socket: the sample's `sds-grpc` cluster is kept, with this pipe path. */
  sdsSocket?: string;
}

/**
 * sidecar-config/envoy-bootstrap.yaml made fit for a test: this workload's node, admin on
 * 127.0.0.1:0 (the port is learnt through --admin-address-path), ADS to meshpilot's address,
 * CDS over ADS but no LDS (see the top of this file), the sample's load reporting (LRS over the xDS
 * cluster), the entry listeners as static listeners,
 * and the SDS cluster only with `sdsSocket` (its pipe path set to the agent's socket).
 */
export function testBootstrap(o: TestBootstrapOptions): Json {
  const sample = YAML.parse(fs.readFileSync(SAMPLE_BOOTSTRAP, 'utf8')) as Json;
  const [host, port] = splitAddress(o.xdsAddress);
  const xds = (sample.static_resources.clusters as Json[]).find((c) => c.name === XDS_CLUSTER);
  if (!xds) throw new Error(`${SAMPLE_BOOTSTRAP} has no ${XDS_CLUSTER} cluster`);
  xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = { address: host, port_value: port };
  const sds = (sample.static_resources.clusters as Json[]).find((c) => c.name === SDS_CLUSTER);
  if (!sds) throw new Error(`${SAMPLE_BOOTSTRAP} has no ${SDS_CLUSTER} cluster`);
  if (o.sdsSocket) sds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address = { pipe: { path: o.sdsSocket } };
  const { lds_config: _lds, ...dynamic } = sample.dynamic_resources as Json;
  return {
    node: sidecarNode(o.workload),
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    // LRS to meshpilot over the xDS cluster, as the sample has it (and injection writes it).
    cluster_manager: sample.cluster_manager,
    dynamic_resources: {
      ...dynamic,
      ads_config: { ...dynamic.ads_config, api_type: o.delta ? 'DELTA_GRPC' : 'GRPC' },
    },
    static_resources: {
      listeners: o.entries.map((e) => ({
        name: e.name,
        address: { socket_address: { address: e.address, port_value: e.port } },
        filter_chains: [{ filters: [{ name: HCM_FILTER, typed_config: e.hcm }], ...(e.transportSocket ? { transport_socket: e.transportSocket } : {}) }],
      })),
      clusters: o.sdsSocket ? [xds, sds] : [xds],
    },
  };
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port <= 0) throw new Error(`not host:port: ${address}`);
  return [address.slice(0, i), port];
}

/** The virtual host of route config `routeConfig` whose domains hold `host` exactly, if any. */
export function virtualHostFor(resources: Resources, routeConfig: string, host: string): Json | undefined {
  const rc = resources[ROUTE_CONFIG].find((r) => r.name === routeConfig);
  return (rc?.virtual_hosts as Json[] | undefined)?.find((vh) => (vh.domains as string[]).includes(host));
}
