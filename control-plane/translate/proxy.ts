// Who is asking: an Envoy sidecar or a proxyless gRPC client, with the identity rules are scoped by.
import type { Locality } from '../model/types.ts';

export type ClientKind = 'envoy' | 'grpc';

export interface Proxy {
  id: string;
  kind: ClientKind;
  namespace: string;
  labels: Record<string, string>;
  /** The workload's IP (from the node id); used to find the services it serves itself. */
  ip?: string;
  locality: Locality;
  /** The caller's network (node metadata NETWORK, as Istio's); endpoints elsewhere go through gateways. */
  network?: string;
  /** Node metadata SERVICE_ACCOUNT (as Istio's bootstraps set it): the workload's identity. Not a
   * grouping input: no generated config depends on it. */
  serviceAccount?: string;
  /** A gateway proxy (node type `router`, as Istio's gateways): an Envoy that is not a sidecar.
   * It gets listeners for the servers of the Gateways that select it (translate/gateway.ts). */
  router?: true;
}

export interface NodeInfo {
  id: string;
  metadata?: Record<string, unknown>;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  user_agent_name?: string;
}

/**
 * Reads an Istio-style node (`sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local`, or
 * `router~...` for a gateway,
 * metadata NAMESPACE, LABELS, GENERATOR). Proxyless gRPC is recognised by `GENERATOR: grpc`, as
 * Istio's gRPC bootstrap sets it, or by a gRPC user agent.
 */
export function proxyFromNode(node: NodeInfo): Proxy {
  const md = node.metadata ?? {};
  const parts = node.id.split('~');
  const ip = parts.length === 4 && parts[1] ? parts[1] : undefined;
  const podDotNs = parts.length === 4 ? parts[2] : '';
  const nsFromId = podDotNs.includes('.') ? podDotNs.slice(podDotNs.lastIndexOf('.') + 1) : undefined;
  const namespace = str(md.NAMESPACE) ?? nsFromId ?? 'default';
  const labels: Record<string, string> = {};
  if (md.LABELS && typeof md.LABELS === 'object') {
    for (const [k, v] of Object.entries(md.LABELS as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  const agent = (node.user_agent_name ?? '').toLowerCase();
  const kind: ClientKind = str(md.GENERATOR) === 'grpc' || agent.includes('grpc') ? 'grpc' : 'envoy';
  const router = kind === 'envoy' && parts.length === 4 && parts[0] === 'router';
  return {
    id: node.id,
    kind,
    namespace,
    labels,
    ...(ip ? { ip } : {}),
    ...(router ? { router: true as const } : {}),
    ...(str(md.NETWORK) ? { network: str(md.NETWORK) } : {}),
    ...(str(md.SERVICE_ACCOUNT) ? { serviceAccount: str(md.SERVICE_ACCOUNT) } : {}),
    locality: { region: node.locality?.region ?? '', zone: node.locality?.zone ?? '', subzone: node.locality?.sub_zone ?? '' },
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Proxies with the same group key get the same config, so it is translated once per group.
 * Only the label keys some rule looks at count (`labelKeys`), and the IP only when some service
 * has an endpoint there (`servesTraffic`): the inbound side (Envoy's virtualInbound, a gRPC
 * server's listeners) depends on it. Many callers thus share one translation.
 */
export function proxyGroupKey(p: Proxy, servesTraffic: boolean, labelKeys: ReadonlySet<string>, topology: TopologyUse = NO_TOPOLOGY): string {
  const labels = Object.entries(p.labels).filter(([k]) => labelKeys.has(k)).sort(([a], [b]) => a.localeCompare(b));
  // A gateway (node type router) reads credentialName where a sidecar does not (credentials/access.ts).
  const key: unknown[] = [p.router ? 'router' : p.kind, p.namespace, labels, servesTraffic ? (p.ip ?? '') : ''];
  // Added only when some cluster's endpoints differ by caller, so callers keep sharing otherwise.
  if (topology.locality) key.push(`${p.locality.region}/${p.locality.zone}/${p.locality.subzone}`);
  if (topology.network) key.push(p.network ?? '');
  return JSON.stringify(key);
}

/** Whether the caller's locality or network can change what it gets (translate/locality-priority.ts topologyUse). */
export interface TopologyUse { locality: boolean; network: boolean }
const NO_TOPOLOGY: TopologyUse = { locality: false, network: false };
