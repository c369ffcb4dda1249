// The dashboard's mesh graph (the `graph` part of GET /dashboard/api/state), from the served model:
// services with their subsets, endpoints, rules and policies; edges from the routing rules (each
// VirtualService route's destinations, weights in percent of that route); who calls whom, from the
// proxies. Pure and deterministic: the same inputs give the same JSON text, which is how the event
// stream (events.ts) tells that something changed.
import { isKind, type ConfigObject } from '../config/types.ts';
import type { LoadReport, SubsetLoad } from '../load/load-route.ts';
import { effectiveMtls } from '../model/peer-authentication.ts';
import { labelsMatch, endpointPort } from '../model/services.ts';
import type { FaultPolicy, HttpRoute, Model, Origin, Service, UpstreamCluster, WeightedDestination } from '../model/types.ts';
import type { ProxyStatus } from '../observe/proxy-status.ts';

export interface RuleRef { key: string; at: string }
export interface LoadFigure { requestsPerSecond: number; successRate: number | null }

export interface GraphService {
  host: string;
  /** The host's first label (`reviews` of `reviews.default.svc.cluster.local`). */
  name: string;
  namespace: string;
  ports: Array<{ number: number; name: string; protocol: string }>;
  subsets: Array<{ name: string; labels: Record<string, string>; endpoints: number }>;
  endpoints: Array<{ address: string; ports: Record<string, number>; locality: string; labels: Record<string, string>; subset?: string }>;
  /** Every rule naming the host (as its subject or as a destination), sorted by key. */
  rules: RuleRef[];
  policies: {
    faults: Array<{ route: string; at: string; origin: RuleRef; fault: FaultPolicy }>;
    mirrors: Array<{ route: string; to: string; subset: string | null; percent: number }>;
    rateLimits: string[];
    authorization: string[];
    mtls?: string;
  };
  load?: LoadFigure;
}

export interface GraphEdge {
  id: string;
  from: string;
  to: string;
  /** The service port of the route table. */
  port: number;
  subset: string | null;
  /** Percent of the route's traffic. */
  weight: number;
  route: string;
  origin: RuleRef;
  /** The Canary deciding the weights now. */
  weightsFrom?: string;
  load?: LoadFigure;
}

export interface Graph {
  namespaces: string[];
  services: GraphService[];
  edges: GraphEdge[];
  callers: Array<{ from: string; to: string }>;
}

export interface GraphInput {
  /** The served model (canary weights and experiment faults applied). */
  model: Model;
  /** Rules in force: where each one is written (file:line). */
  accepted: readonly ConfigObject[];
  load?: LoadReport | null;
  /** Connected proxies: a gRPC client's listener subscriptions name the services it calls. */
  proxies?: ReadonlyArray<Pick<ProxyStatus, 'id' | 'labels' | 'types'>>;
  /** Cluster -> node ids that reported load for it (LRS). */
  reporters?: ReadonlyMap<string, readonly string[]>;
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const isVirtualService = (o: Origin) => o.key.startsWith('VirtualService/');

/**
 * What depends on the model alone (services, edges, rules, policies) is computed once per served
 * model and rules list: the event stream asks twice a second, and at 1,000 services it is most of
 * the cost. Load figures and callers are laid over it on each call.
 */
const bases = new WeakMap<Model, { accepted: readonly ConfigObject[]; graph: BaseGraph }>();

type BaseEdge = GraphEdge & { cluster: string };
interface BaseGraph { namespaces: string[]; services: GraphService[]; edges: BaseEdge[] }

export function meshGraph({ model, accepted, load, proxies = [], reporters = new Map() }: GraphInput): Graph {
  let base = bases.get(model);
  if (base?.accepted !== accepted) bases.set(model, (base = { accepted, graph: baseGraph(model, accepted) }));
  const { namespaces, services, edges } = base.graph;
  const hosts = new Set(model.services.map((s) => s.host));
  const loadOf = loadIndex(load);
  return {
    namespaces,
    services: loadOf.hosts.size ? services.map((s) => (loadOf.hosts.has(s.host) ? { ...s, load: loadOf.hosts.get(s.host)! } : s)) : services,
    edges: edges.map((e) => {
      const figures = loadOf.clusters.get(e.cluster);
      return figures ? { ...withoutCluster(e), load: figures } : withoutCluster(e);
    }),
    callers: callersOf(model, proxies, reporters, hosts),
  };
}

const withoutCluster = ({ cluster: _c, ...e }: BaseEdge): GraphEdge => e;

function baseGraph(model: Model, accepted: readonly ConfigObject[]): BaseGraph {
  const objects = new Map(accepted.map((o) => [o.key, o]));
  const hosts = new Set(model.services.map((s) => s.host));
  const rules = new Map<string, Map<string, string>>();
  // Rules are listed where their object starts; an origin's own position when the object is unknown.
  const addRule = (host: string, key: string, fallbackAt: string) => {
    if (!hosts.has(host)) return;
    let m = rules.get(host);
    if (!m) rules.set(host, (m = new Map()));
    const o = objects.get(key);
    m.set(key, o ? `${o.source.file}:${o.source.line}` : m.get(key) ?? fallbackAt);
  };
  const policies = new Map<string, GraphService['policies']>(model.services.map((s) => [s.host, { faults: [], mirrors: [], rateLimits: [], authorization: [] }]));

  const edges: BaseEdge[] = [];
  const ids = new Set<string>();
  const addEdges = (from: string, port: number, route: { name: string; origin: Origin; weightsFrom?: Origin }, destinations: readonly WeightedDestination[]) => {
    const total = destinations.reduce((n, d) => n + d.weight, 0);
    for (const d of destinations) {
      let id = `${from}:${port}|${route.name}|${d.cluster}`;
      for (let i = 2; ids.has(id); i++) id = `${from}:${port}|${route.name}|${d.cluster}#${i}`;
      ids.add(id);
      edges.push({
        id, from, to: d.host, port, subset: d.subset ?? null, cluster: d.cluster,
        weight: total > 0 ? round2((d.weight / total) * 100) : 0,
        route: route.name,
        origin: { key: route.origin.key, at: route.origin.at },
        ...(route.weightsFrom ? { weightsFrom: route.weightsFrom.key } : {}),
      });
      addRule(d.host, route.origin.key, route.origin.at);
    }
  };

  for (const table of model.routeTables) {
    const p = policies.get(table.host);
    for (const r of table.routes) {
      // A fault experiment may inject into the default route too.
      if (p) routePolicies(p, r);
      if (r.faultFrom) addRule(table.host, r.faultFrom.key, r.faultFrom.at);
      // The default route (no VirtualService) is the service itself, not a rule: no edge.
      if (!isVirtualService(r.origin)) continue;
      addRule(table.host, r.origin.key, r.origin.at);
      if (r.delegation) addRule(table.host, r.delegation.key, r.delegation.at);
      if (r.weightsFrom) addRule(table.host, r.weightsFrom.key, r.weightsFrom.at);
      if (r.action.kind === 'route') addEdges(table.host, table.port, r, r.action.destinations);
      for (const m of r.mirrors ?? []) addRule(m.host, r.origin.key, r.origin.at);
    }
  }
  for (const table of model.l4Tables) {
    for (const r of table.routes) {
      if (!isVirtualService(r.origin)) continue;
      addRule(table.host, r.origin.key, r.origin.at);
      addEdges(table.host, table.port, r, r.destinations);
    }
  }
  for (const gvs of model.gatewayVirtualServices) {
    for (const h of gvs.hosts) addRule(h, gvs.origin.key, gvs.origin.at);
    for (const { route } of gvs.routes) if (route.action.kind === 'route') for (const d of route.action.destinations) addRule(d.host, gvs.origin.key, gvs.origin.at);
    for (const r of gvs.l4) for (const d of r.destinations) addRule(d.host, gvs.origin.key, gvs.origin.at);
  }
  for (const s of model.services) addRule(s.host, s.origin.key, s.origin.at);
  for (const c of model.clusters) if (c.origin) addRule(c.host, c.origin.key, c.origin.at);
  for (const rl of model.rateLimits) {
    addRule(rl.host, rl.origin.key, rl.origin.at);
    policies.get(rl.host)?.rateLimits.push(rl.origin.key);
  }
  for (const c of model.canaries) addRule(c.host, c.key, c.origin.at);
  for (const e of model.experiments) addRule(e.host, e.key, e.origin.at);

  const clustersByHost = new Map<string, UpstreamCluster[]>();
  for (const c of model.clusters) clustersByHost.set(c.host, [...(clustersByHost.get(c.host) ?? []), c]);
  const services = model.services.map((svc): GraphService => {
    const p = policies.get(svc.host)!;
    // Workload policies: those selecting any of the service's endpoints (a selector-less one, the namespace).
    const selects = (namespace: string, selector: Record<string, string> | undefined) =>
      namespace === svc.namespace && (!selector || svc.endpoints.some((e) => labelsMatch(selector, e.labels)));
    for (const a of model.authorizationPolicies) {
      if (!selects(a.namespace, a.selector)) continue;
      addRule(svc.host, a.origin.key, a.origin.at);
      p.authorization.push(a.origin.key);
    }
    for (const ra of model.requestAuthentications) {
      if (selects(ra.namespace, ra.selector) || (ra.namespace === model.mesh.rootNamespace && !ra.selector)) addRule(svc.host, ra.origin.key, ra.origin.at);
    }
    const modes = new Set<string>();
    for (const sp of svc.ports) {
      for (const e of svc.endpoints.length ? svc.endpoints : [undefined]) {
        const eff = effectiveMtls(model.peerAuthentications, model.mesh, svc.namespace, e?.labels ?? {}, e ? endpointPort(e, sp) : sp.number);
        modes.add(eff.mode);
        if (eff.origin) addRule(svc.host, eff.origin.key, eff.origin.at);
      }
    }
    if (modes.size) p.mtls = [...modes].sort().join(', ');
    p.faults.sort((a, b) => compare(a.route, b.route));
    p.mirrors.sort((a, b) => compare(a.route, b.route) || compare(a.to, b.to) || compare(a.subset ?? '', b.subset ?? ''));
    p.rateLimits = [...new Set(p.rateLimits)].sort();
    p.authorization = [...new Set(p.authorization)].sort();
    const { subsets, endpoints } = subsetsOf(svc, clustersByHost.get(svc.host) ?? [], objects);
    return {
      host: svc.host,
      name: svc.host.split('.')[0]!,
      namespace: svc.namespace,
      ports: svc.ports.map((sp) => ({ number: sp.number, name: sp.name, protocol: sp.protocol })),
      subsets,
      endpoints,
      rules: [...(rules.get(svc.host) ?? [])].map(([key, at]) => ({ key, at })).sort((a, b) => compare(a.key, b.key)),
      policies: p,
    };
  });

  return { namespaces: [...new Set(model.services.map((s) => s.namespace))].sort(), services, edges };
}

/** A route's fault and mirrors, on the policies of the host whose table it is in. */
function routePolicies(p: GraphService['policies'], r: HttpRoute): void {
  if (r.fault && !p.faults.some((f) => f.route === r.name)) {
    const from = r.faultFrom ?? r.origin;
    p.faults.push({ route: r.name, at: r.origin.at, origin: { key: from.key, at: from.at }, fault: r.fault });
  }
  for (const m of r.mirrors ?? []) {
    if (!p.mirrors.some((x) => x.route === r.name && x.to === m.host && x.subset === (m.subset ?? null))) p.mirrors.push({ route: r.name, to: m.host, subset: m.subset ?? null, percent: m.percent });
  }
}

/**
 * Subsets as the DestinationRule in force defines them (labels), with how many endpoints each
 * selects (the model's own selection, on the service's first port); each endpoint with the first
 * subset that selects it.
 */
function subsetsOf(svc: Service, hostClusters: readonly UpstreamCluster[], objects: ReadonlyMap<string, ConfigObject>): Pick<GraphService, 'subsets' | 'endpoints'> {
  const clusters = [...hostClusters].sort((a, b) => a.port.number - b.port.number);
  const port = clusters[0]?.port;
  const rule = clusters.find((c) => c.subset === undefined)?.origin;
  const dr = rule ? objects.get(rule.key) : undefined;
  const labelsOf = new Map<string, Record<string, string>>();
  if (dr && isKind(dr, 'DestinationRule')) for (const s of dr.spec.subsets ?? []) labelsOf.set(s.name, { ...(s.labels ?? {}) });
  const subsetClusters = clusters.filter((c) => c.subset !== undefined && c.port === port);
  const subsets = subsetClusters.map((c) => ({ name: c.subset!, labels: labelsOf.get(c.subset!) ?? {}, endpoints: c.endpoints.length }));
  const endpoints = svc.endpoints.map((e) => {
    const at = port ? endpointPort(e, port) : undefined;
    const subset = subsetClusters.find((c) => c.endpoints.some((x) => x.address === e.address && x.port === at && labelsMatch(x.labels, e.labels)))?.subset;
    return {
      address: e.address,
      ports: { ...e.ports },
      // Empty trailing parts left out, as Istio writes a locality (`us-east/zone-a`).
      locality: [e.locality.region, e.locality.zone, e.locality.subzone].join('/').replace(/\/+$/, ''),
      labels: { ...e.labels },
      ...(subset !== undefined ? { subset } : {}),
    };
  });
  return { subsets, endpoints };
}

interface LoadIndex { clusters: Map<string, LoadFigure>; hosts: Map<string, LoadFigure> }

/** The load report by cluster, and summed per service (success rate over all its completed calls). */
function loadIndex(load: LoadReport | null | undefined): LoadIndex {
  const out: LoadIndex = { clusters: new Map(), hosts: new Map() };
  for (const s of load?.services ?? []) {
    let rps = 0, completed = 0, failed = 0;
    for (const sub of s.subsets) {
      out.clusters.set(sub.cluster, figure(sub));
      rps += sub.requestsPerSecond;
      completed += sub.completed;
      failed += sub.failed;
    }
    out.hosts.set(s.host, { requestsPerSecond: Math.round(rps * 1000) / 1000, successRate: completed ? round2(((completed - failed) / completed) * 100) : null });
  }
  return out;
}

const figure = (s: SubsetLoad): LoadFigure => ({ requestsPerSecond: s.requestsPerSecond, successRate: s.successRate });

/**
 * Who calls which service: a proxyless gRPC client subscribes to the listener `host:port` of each
 * target it dials; a proxy that reported load for a cluster called its service. The caller is named
 * by its `app` label, else by its node id's pod part.
 */
function callersOf(model: Model, proxies: NonNullable<GraphInput['proxies']>, reporters: ReadonlyMap<string, readonly string[]>, hosts: ReadonlySet<string>): Graph['callers'] {
  const byId = new Map(proxies.map((p) => [p.id, p]));
  const name = (id: string) => byId.get(id)?.labels.app ?? podOf(id);
  const pairs = new Set<string>();
  for (const p of proxies) {
    const subscribed = p.types.lds?.subscribed;
    if (!Array.isArray(subscribed)) continue;
    for (const listener of subscribed) {
      const host = listener.replace(/:\d+$/, '');
      if (hosts.has(host)) pairs.add(JSON.stringify([name(p.id), host]));
    }
  }
  const hostOf = new Map(model.clusters.map((c) => [c.name, c.host]));
  for (const [cluster, ids] of reporters) {
    const host = hostOf.get(cluster);
    if (host) for (const id of ids) pairs.add(JSON.stringify([name(id), host]));
  }
  return [...pairs].sort().map((j) => {
    const [from, to] = JSON.parse(j) as [string, string];
    return { from, to };
  });
}

/** `sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local` -> `reviews-v1-abc`; other ids as they are. */
function podOf(id: string): string {
  const parts = id.split('~');
  return parts.length === 4 && parts[2] ? parts[2].split('.')[0]! : id;
}
