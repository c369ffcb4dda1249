// The sidecar's Envoy bootstrap: everything Envoy needs on its own (the agent beside it only
// serves certificates, over SDS on a Unix socket, cluster `sds-grpc`): who it is (node id and
// metadata, in the form translate/proxy.ts reads), where meshpilot is (ADS over HTTP/2 to its
// Service; with `xds.tls`, over mutual TLS with the agent's certificate; load reports for canaries
// go the same way, `cluster_manager.load_stats_config`), an admin endpoint on
// localhost only, and a readiness listener the kubelet can reach. What only the running pod knows
// (IP, name, namespace, service account) is written as Kubernetes $(VAR) references to downward-API
// variables, which the kubelet expands in the container's args; the labels are known at injection time.
import { stringify } from 'yaml';
import type { Json } from '../json.ts';
// The same SDS secret references (cluster `sds-grpc`, secrets `default` and `ROOTCA`) as the TLS
// contexts meshpilot sends over xDS: one definition of how Envoy asks the agent for certificates.
import { meshCommonTlsContext, SDS_CLUSTER, transportSocket, UPSTREAM_TLS } from '../translate/tls-context.ts';
import type { InjectionConfig } from './config.ts';
import { DOWNWARD_ENV, SDS_SOCKET, type DownwardVar } from './names.ts';

export const XDS_CLUSTER = 'meshpilot-xds';
export const ADMIN_CLUSTER = 'meshpilot-admin';
/** TLS contexts name this cluster in sds_config (api_config_source, envoy_grpc). */
export { SDS_CLUSTER };
export const READY_PATH = '/healthz/ready';

// Placeholders cannot occur in label keys or values (no '@'), so replacing them is unambiguous.
const placeholder = (v: DownwardVar) => `@@${v}@@`;
const ref = (v: DownwardVar) => `$(${DOWNWARD_ENV[v].name})`;

export interface BootstrapInput {
  labels: Record<string, string>;
  /** `router`: a gateway proxy (translate/proxy.ts); default sidecar. */
  nodeType?: 'sidecar' | 'router';
}

/** The bootstrap as an object, with `@@podIp@@`-style placeholders for the downward-API values. */
export function bootstrapObject(config: InjectionConfig, input: BootstrapInput): Record<string, unknown> {
  const ip = placeholder('podIp');
  const ns = placeholder('podNamespace');
  const name = placeholder('podName');
  const app = input.labels.app ?? input.labels['app.kubernetes.io/name'];
  return {
    node: {
      // The id form proxyFromNode parses: sidecar|router~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>.
      id: `${input.nodeType ?? 'sidecar'}~${ip}~${name}.${ns}~${ns}.svc.${config.xds.clusterDomain}`,
      cluster: app ? `${app}.${ns}` : ns,
      metadata: {
        NAMESPACE: ns,
        NAME: name,
        LABELS: input.labels,
        SERVICE_ACCOUNT: placeholder('serviceAccount'),
        INSTANCE_IPS: ip,
      },
    },
    admin: { address: socket('127.0.0.1', config.ports.admin) },
    // LRS (load/lrs-service.ts): meshpilot names the clusters to report, only those a Canary or
    // fault experiment judges, so an Envoy outside any rollout reports nothing.
    cluster_manager: { load_stats_config: meshpilotGrpc() },
    dynamic_resources: {
      ads_config: meshpilotGrpc(),
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      listeners: [readinessListener(config)],
      // sds-grpc first: meshpilot-xds's TLS context reads its certificates through it.
      clusters: [
        sdsCluster(SDS_SOCKET),
        {
          name: XDS_CLUSTER,
          type: 'STRICT_DNS',
          connect_timeout: '1s',
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          ...xdsTransport(config),
        },
        { name: ADMIN_CLUSTER, type: 'STATIC', connect_timeout: '1s', load_assignment: staticEndpoint(ADMIN_CLUSTER, '127.0.0.1', config.ports.admin) },
      ],
    },
  };
}

/** A gRPC API on meshpilot's xDS cluster (ADS and LRS: one channel, one TLS identity). */
function meshpilotGrpc() {
  return { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }] };
}

/**
 * How Envoy reaches meshpilot's xDS. With `xds.tls`: the TLS port (caPort, where meshpilot also
 * runs the CA), presenting the workload certificate the agent serves as SDS secret `default`, and
 * trusting only the mesh roots (`ROOTCA`) for a serving certificate that names the host dialled, as
 * a DNS SAN; SNI says that host too. meshpilot then knows the proxy's identity from its certificate
 * and refuses a node that claims another namespace or service account. ALPN h2: gRPC over TLS.
 * Without: plaintext to `xds.port`.
 */
export function xdsTransport(config: InjectionConfig): { load_assignment: Json; transport_socket?: Json } {
  const { address, tls } = config.xds;
  if (!tls) return { load_assignment: staticEndpoint(XDS_CLUSTER, address, config.xds.port) };
  return {
    load_assignment: staticEndpoint(XDS_CLUSTER, address, config.xds.caPort),
    transport_socket: transportSocket({ '@type': UPSTREAM_TLS, sni: address, common_tls_context: meshCommonTlsContext('envoy', [address], ['h2']) }),
  };
}

/** The agent's SDS server: gRPC, so HTTP/2, on the Unix socket in the volume Envoy shares with it. */
export function sdsCluster(socketPath: string) {
  return {
    name: SDS_CLUSTER,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: { cluster_name: SDS_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: socketPath } } } }] }] },
  };
}

function socket(address: string, port: number) {
  return { socket_address: { address, port_value: port } };
}

function staticEndpoint(cluster: string, address: string, port: number) {
  return { cluster_name: cluster, endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(address, port) } }] }] };
}

// The kubelet probes the pod IP, but admin listens on localhost only: this listener forwards just
// the readiness path to admin's /ready, which answers 200 once Envoy has its first config from ADS.
function readinessListener(config: InjectionConfig) {
  return {
    name: 'meshpilot-readiness',
    address: socket('0.0.0.0', config.ports.health),
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          stat_prefix: 'meshpilot_readiness',
          route_config: {
            name: 'meshpilot-readiness',
            virtual_hosts: [{
              name: 'readiness',
              domains: ['*'],
              routes: [{ match: { path: READY_PATH }, route: { cluster: ADMIN_CLUSTER, prefix_rewrite: '/ready' } }],
            }],
          },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        },
      }],
    }],
  };
}

/**
 * The bootstrap as one argument for Envoy's --config-yaml. Literal `$` is doubled so the kubelet
 * keeps it; the placeholders (quoted by the YAML writer, as '@' cannot start a plain scalar) become
 * $(VAR) references it expands.
 */
export function bootstrapArg(config: InjectionConfig, input: BootstrapInput): string {
  // Replicas share their labels, so most admissions repeat an earlier bootstrap; writing YAML is
  // the costliest step of an admission. Bounded, per settings object.
  let cache = bootstrapCache.get(config);
  if (!cache) bootstrapCache.set(config, (cache = new Map()));
  // Insertion order is part of the key: the output lists labels in the order the pod has them.
  // The node type too: a gateway with a sidecar's labels is another node.
  const key = JSON.stringify([input.nodeType ?? 'sidecar', input.labels]);
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const text = writeBootstrapArg(config, input);
  if (cache.size >= 1000) cache.delete(cache.keys().next().value!);
  cache.set(key, text);
  return text;
}

const bootstrapCache = new WeakMap<InjectionConfig, Map<string, string>>();

function writeBootstrapArg(config: InjectionConfig, input: BootstrapInput): string {
  let text = stringify(bootstrapObject(config, input), { lineWidth: 0, aliasDuplicateObjects: false }).replaceAll('$', '$$$$');
  for (const v of Object.keys(DOWNWARD_ENV) as DownwardVar[]) text = text.replaceAll(placeholder(v), ref(v));
  return text;
}
