// Writes examples/compose/envoy/<workload>.yaml: the Envoy bootstrap of each sidecar in the compose
// example. It is the bootstrap sidecar injection writes (control-plane/inject/bootstrap.ts), with
// what the kubelet would fill in given as literal values, and two compose-specific changes:
// - plaintext ADS to the `meshpilot` compose service on 15010 (no agent, so no SDS cluster);
// - a static listener on 127.0.0.1:15080 that the app sends its outbound HTTP to (compose has no
//   iptables redirect into virtualOutbound, see README.md). It takes its routes from meshpilot over
//   ADS: the route config "9080", the one meshpilot generates for the services' HTTP port and that
//   its own outbound listener 0.0.0.0_9080 names, so the app gets exactly a pod's routing.
//
//   npx tsx examples/compose/make-bootstraps.ts          # rewrite the files
//   (test/compose-example.test.ts fails when they are out of date)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { bootstrapObject, SDS_CLUSTER } from '../../control-plane/inject/bootstrap.ts';
import { loadInjectionConfig, type InjectionConfig } from '../../control-plane/inject/config.ts';
import { FAULT_FILTER_NAME, HTTP_FAULT } from '../../control-plane/translate/fault.ts';
import { httpConnectionManager } from '../../control-plane/translate/hcm.ts';
import { LOCAL_RATE_LIMIT, LOCAL_RATE_LIMIT_FILTER } from '../../control-plane/translate/local-rate-limit.ts';
import { LISTENER } from '../../control-plane/translate/type-urls.ts';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const NAMESPACE = 'default';
/** Where meshpilot's xDS is, as compose.yaml's `meshpilot` service runs it (--xds-listen 0.0.0.0:15010). */
export const XDS = { address: 'meshpilot', port: 15010 };
/** The service port every service of the example uses, and so the name of its route config. */
export const SERVICE_PORT = 9080;
/** The sidecar's explicit outbound HTTP listener (loopback only: the app shares Envoy's network namespace). */
export const OUTBOUND = { address: '127.0.0.1', port: 15080, name: 'compose-outbound-http' };

export interface Workload {
  /** The compose service of the app; its sidecar is `<name>-envoy`, its bootstrap envoy/<name>.yaml. */
  name: string;
  ip: string;
  labels: { app: string; version: string };
  serviceAccount: string;
}

// The fixed addresses compose.yaml gives the app containers on the `mesh` network (10.213.0.0/24);
// rules/services.yaml and rules/client.yaml list the same ones.
export const WORKLOADS: Workload[] = [
  { name: 'client', ip: '10.213.0.10', labels: { app: 'client', version: 'v1' }, serviceAccount: 'client' },
  { name: 'productpage-v1', ip: '10.213.0.11', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'productpage' },
  { name: 'reviews-v1', ip: '10.213.0.21', labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'reviews' },
  { name: 'reviews-v2', ip: '10.213.0.22', labels: { app: 'reviews', version: 'v2' }, serviceAccount: 'reviews' },
  { name: 'reviews-v3', ip: '10.213.0.23', labels: { app: 'reviews', version: 'v3' }, serviceAccount: 'reviews' },
  { name: 'ratings-v1', ip: '10.213.0.31', labels: { app: 'ratings', version: 'v1' }, serviceAccount: 'ratings' },
  { name: 'details-v1', ip: '10.213.0.41', labels: { app: 'details', version: 'v1' }, serviceAccount: 'details' },
];

/** The injection settings with the compose example's xDS address: plaintext, to the compose service. */
export function composeInjectionConfig(): InjectionConfig {
  const base = loadInjectionConfig();
  return { ...base, xds: { ...base.xds, address: XDS.address, port: XDS.port, tls: false } };
}

/**
 * The explicit outbound listener. Its HTTP filters are the ones meshpilot's outbound listeners can
 * carry, each inert until a route or virtual host from RDS configures it: the local rate limit
 * (no bucket: off) and fault injection (no fault), then the router. They are listed whatever the
 * rules say because a static listener cannot change when the rules do: a fault or rate limit added
 * while the mesh runs then works here too.
 */
export function outboundListener(): Record<string, unknown> {
  const hcm = httpConnectionManager(`outbound_${OUTBOUND.address}_${OUTBOUND.port}`, { rds: String(SERVICE_PORT) }, [
    { name: LOCAL_RATE_LIMIT_FILTER, typed_config: { '@type': LOCAL_RATE_LIMIT, stat_prefix: 'rate_limit' } },
    { name: FAULT_FILTER_NAME, typed_config: { '@type': HTTP_FAULT } },
  ]);
  const { '@type': _type, ...listener } = {
    '@type': LISTENER,
    name: OUTBOUND.name,
    address: { socket_address: { address: OUTBOUND.address, port_value: OUTBOUND.port } },
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name: OUTBOUND.name, filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }],
  };
  return listener;
}

/** One workload's bootstrap, as an object (what envoy/<name>.yaml holds). */
export function composeBootstrap(w: Workload, config: InjectionConfig = composeInjectionConfig()): Record<string, any> {
  const values: Record<string, string> = { podIp: w.ip, podName: w.name, podNamespace: NAMESPACE, serviceAccount: w.serviceAccount };
  let text = JSON.stringify(bootstrapObject(config, { labels: w.labels }));
  for (const [k, v] of Object.entries(values)) text = text.replaceAll(`@@${k}@@`, v);
  if (text.includes('@@')) throw new Error(`make-bootstraps: a placeholder was not filled in: ${text.match(/@@\w+@@/)![0]}`);
  const boot = JSON.parse(text) as Record<string, any>;
  // No agent beside Envoy in this example, so no certificates: the SDS cluster would name a socket
  // nobody serves.
  boot.static_resources.clusters = boot.static_resources.clusters.filter((c: { name: string }) => c.name !== SDS_CLUSTER);
  boot.static_resources.listeners = [...boot.static_resources.listeners, outboundListener()];
  return boot;
}

export function bootstrapFile(w: Workload): string {
  return path.join(HERE, 'envoy', `${w.name}.yaml`);
}

export function bootstrapText(w: Workload, config?: InjectionConfig): string {
  const header = [
    `# Envoy bootstrap of the ${w.name} sidecar (compose service ${w.name}-envoy).`,
    '# Generated by examples/compose/make-bootstraps.ts: do not edit, run `npx tsx examples/compose/make-bootstraps.ts`.',
    '',
  ].join('\n');
  return header + stringify(composeBootstrap(w, config), { lineWidth: 0, aliasDuplicateObjects: false });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.mkdirSync(path.join(HERE, 'envoy'), { recursive: true });
  for (const w of WORKLOADS) {
    fs.writeFileSync(bootstrapFile(w), bootstrapText(w));
    console.log(`wrote ${path.relative(process.cwd(), bootstrapFile(w))}`);
  }
}
