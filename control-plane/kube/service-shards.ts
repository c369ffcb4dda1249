// Services, EndpointSlices, Pods and Nodes of one cluster -> one shard of mesh services; shards of
// all clusters merged per host (namespace sameness: the same name and namespace in any cluster is
// the same service) -> ServiceEntry-shaped documents the existing model turns into services with
// endpoints, pod labels (subsets), service accounts, locality and the cluster's network.
import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';

export interface ShardPort { name: string; number: number; protocol: string; targetPort?: number }

export interface ShardEndpoint {
  address: string;
  ports: Record<string, number>;
  labels?: Record<string, string>;
  locality?: string;
  network?: string;
  serviceAccount?: string;
}

export interface ShardService {
  namespace: string;
  name: string;
  ports: ShardPort[];
  endpoints: ShardEndpoint[];
  /** The Service's cluster IPs (none for a headless Service): what L4 routing tells services apart by. */
  addresses?: string[];
}

/** One cluster's services, by `namespace/name`. */
export type Shard = Map<string, ShardService>;

export interface ClusterObjects {
  services: V1Service[];
  endpointSlices: V1EndpointSlice[];
  pods: V1Pod[];
  nodes: V1Node[];
}

const REGION = 'topology.kubernetes.io/region';
const ZONE = 'topology.kubernetes.io/zone';
const SUBZONE = 'topology.istio.io/subzone';
const SERVICE_NAME = 'kubernetes.io/service-name';
/** Istio's pod label for a network other than the cluster's. */
const NETWORK = 'topology.istio.io/network';

const PROTOCOLS: Record<string, string> = { http: 'HTTP', http2: 'HTTP2', grpc: 'GRPC', https: 'HTTPS', tls: 'TLS', tcp: 'TCP', 'kubernetes.io/h2c': 'HTTP2' };

/** Istio's protocol selection: appProtocol, else the port name's prefix (`grpc-api`), else TCP. */
export function portProtocol(name: string | undefined, appProtocol: string | undefined): string {
  const app = appProtocol?.toLowerCase();
  if (app && PROTOCOLS[app]) return PROTOCOLS[app];
  const prefix = (name ?? '').toLowerCase().split('-')[0]!;
  return PROTOCOLS[prefix] ?? 'TCP';
}

/** `region/zone/subzone` from the node's topology labels (the slice's zone if the node has none). */
export function localityOf(node: V1Node | undefined, sliceZone: string | undefined): string | undefined {
  const labels = node?.metadata?.labels ?? {};
  const parts = [labels[REGION], labels[ZONE] ?? sliceZone, labels[SUBZONE]];
  const out: string[] = [];
  for (const p of parts) {
    if (!p) break; // a locality is a prefix: no zone without a region
    out.push(p);
  }
  return out.length ? out.join('/') : undefined;
}

function portName(name: string | undefined, port: number): string {
  return name || `port-${port}`;
}

/** `spec.clusterIPs` (dual stack), else `spec.clusterIP`; `None` (headless) and empty are no address. */
function clusterIps(svc: V1Service): string[] {
  const ips = svc.spec?.clusterIPs?.length ? svc.spec.clusterIPs : svc.spec?.clusterIP ? [svc.spec.clusterIP] : [];
  return ips.filter((ip) => ip && ip !== 'None');
}

export function buildShard(objs: ClusterObjects, network: string | undefined): Shard {
  const pods = new Map(objs.pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p]));
  const nodes = new Map(objs.nodes.map((n) => [n.metadata?.name ?? '', n]));
  const shard: Shard = new Map();
  const publishNotReady = new Set<string>();
  for (const svc of objs.services) {
    const ns = svc.metadata?.namespace ?? 'default';
    const name = svc.metadata?.name;
    if (!name || svc.spec?.type === 'ExternalName') continue;
    const ports: ShardPort[] = [];
    for (const p of svc.spec?.ports ?? []) {
      if (p.protocol && p.protocol !== 'TCP') continue; // UDP/SCTP are not meshed
      ports.push({
        name: portName(p.name, p.port),
        number: p.port,
        protocol: portProtocol(p.name, p.appProtocol),
        ...(typeof p.targetPort === 'number' ? { targetPort: p.targetPort } : {}),
      });
    }
    if (ports.length === 0) continue;
    if (svc.spec?.publishNotReadyAddresses) publishNotReady.add(`${ns}/${name}`);
    const addresses = clusterIps(svc);
    shard.set(`${ns}/${name}`, { namespace: ns, name, ports, endpoints: [], ...(addresses.length ? { addresses } : {}) });
  }

  const seen = new Set<string>();
  for (const slice of objs.endpointSlices) {
    const ns = slice.metadata?.namespace ?? 'default';
    const owner = slice.metadata?.labels?.[SERVICE_NAME];
    const svc = owner ? shard.get(`${ns}/${owner}`) : undefined;
    if (!svc || slice.addressType === 'FQDN') continue;
    // Slice ports are named like the Service's ports (the empty name for an unnamed single port).
    const svcPorts = new Map((svc.ports ?? []).map((p) => [p.name, p]));
    const ports: Record<string, number> = {};
    for (const p of slice.ports ?? []) {
      const n = p.name ? p.name : svc.ports.length === 1 ? svc.ports[0]!.name : undefined;
      if (n && svcPorts.has(n) && typeof p.port === 'number') ports[n] = p.port;
    }
    for (const ep of slice.endpoints ?? []) {
      // As kube-proxy does: not-ready endpoints only for Services that publish them.
      const notReady = ep.conditions?.ready === false || ep.conditions?.terminating === true;
      if (notReady && !publishNotReady.has(`${svc.namespace}/${svc.name}`)) continue;
      const pod = ep.targetRef?.kind === 'Pod' ? pods.get(`${ep.targetRef.namespace ?? ns}/${ep.targetRef.name}`) : undefined;
      const node = nodes.get(ep.nodeName ?? pod?.spec?.nodeName ?? '');
      const locality = localityOf(node, ep.zone);
      for (const address of ep.addresses ?? []) {
        const id = `${svc.namespace}/${svc.name}/${address}/${JSON.stringify(ports)}`;
        if (seen.has(id)) continue; // the same endpoint in two slices (e.g. during a slice split)
        seen.add(id);
        const labels = pod?.metadata?.labels;
        const net = labels?.[NETWORK] || network;
        svc.endpoints.push({
          address,
          ports: { ...ports },
          ...(labels && Object.keys(labels).length ? { labels: { ...labels } } : {}),
          ...(locality ? { locality } : {}),
          ...(net ? { network: net } : {}),
          ...(pod?.spec?.serviceAccountName ? { serviceAccount: pod.spec.serviceAccountName } : {}),
        });
      }
    }
  }
  const order = (e: ShardEndpoint) => `${e.address} ${JSON.stringify(e.ports)}`;
  for (const s of shard.values()) s.endpoints.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  return shard;
}

/** A merged service and the clusters it came from. */
export interface MergedService extends ShardService { clusters: string[] }

/**
 * Merges shards (in the order given: the config cluster first, then by name). Ports come from the
 * first cluster that defines each port number; endpoint ports that name no merged port are dropped.
 */
export function mergeShards(shards: ReadonlyArray<{ cluster: string; shard: Shard }>): MergedService[] {
  const merged = new Map<string, MergedService>();
  for (const { cluster, shard } of shards) {
    for (const [key, s] of shard) {
      let m = merged.get(key);
      if (!m) {
        m = { namespace: s.namespace, name: s.name, ports: [], endpoints: [], clusters: [] };
        merged.set(key, m);
      }
      m.clusters.push(cluster);
      // Each cluster gives the Service its own cluster IP; a pod only ever dials its own cluster's,
      // so the union is what every sidecar may see.
      for (const a of s.addresses ?? []) if (!(m.addresses ??= []).includes(a)) m.addresses.push(a);
      for (const p of s.ports) if (!m.ports.some((x) => x.number === p.number || x.name === p.name)) m.ports.push(p);
      m.endpoints.push(...s.endpoints);
    }
  }
  for (const m of merged.values()) {
    m.addresses?.sort();
    const names = new Set(m.ports.map((p) => p.name));
    m.endpoints = m.endpoints.map((e) => ({ ...e, ports: Object.fromEntries(Object.entries(e.ports).filter(([n]) => names.has(n))) }));
  }
  return [...merged.values()].sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
}

export const SERVICE_ENTRY_PREFIX = 'k8s.';

/** The ServiceEntry document that stands for a merged Kubernetes Service. */
export function serviceEntryDocument(s: MergedService, domain = 'cluster.local'): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: `${SERVICE_ENTRY_PREFIX}${s.name}`, namespace: s.namespace },
    spec: {
      hosts: [`${s.name}.${s.namespace}.svc.${domain}`],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ...(s.addresses?.length ? { addresses: s.addresses } : {}),
      ports: s.ports,
      endpoints: s.endpoints,
    },
  };
}
