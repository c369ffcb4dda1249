// Which endpoints a caller prefers: Envoy priority levels (and locality weights) per caller, the way
// Istio orders them. Pure. Levels, most preferred first:
//   same region/zone/subzone 0, same region/zone 1, same region 2, other regions 3, and with a
//   `failover` entry for the caller's region, regions other than its `to` 4;
//   `failoverPriority` orders by labels instead (matching the caller on more leading keys first;
//   the locality order applies within its levels only when `failover` is set too, as in Istio),
//   and endpoints in another network (reached through its gateway) after all of the caller's own.
// Empty levels are skipped, so priorities are contiguous (gRPC requires it).
import type { Endpoint, Locality, Model, UpstreamCluster } from '../model/types.ts';

export interface Caller {
  locality: Locality;
  network?: string;
  labels: Record<string, string>;
}

export interface LbTarget { address: string; port: number; weight?: number }

export interface LocalityGroup {
  locality: Locality;
  priority: number;
  /** Locality weight: the sum of its endpoints' weights, or the share `distribute` gives it. */
  weight: number;
  endpoints: LbTarget[];
}

/** Istio's well-known keys for failoverPriority that name the topology rather than a pod label. */
const TOPOLOGY_KEYS: Record<string, (l: Locality, network: string | undefined) => string | undefined> = {
  'topology.istio.io/network': (_l, n) => n || undefined,
  'topology.kubernetes.io/region': (l) => l.region || undefined,
  'topology.kubernetes.io/zone': (l) => l.zone || undefined,
  'topology.istio.io/subzone': (l) => l.subzone || undefined,
};

function labelValue(key: string, labels: Record<string, string>, locality: Locality, network: string | undefined): string | undefined {
  const topo = TOPOLOGY_KEYS[key];
  return topo ? topo(locality, network) : labels[key];
}

export function localityKey(l: Locality): string {
  return `${l.region}/${l.zone}/${l.subzone}`;
}

/** Whether a locality matches a pattern such as "r1", "r1/*", "r1/a", "r1/a/*" or "*". */
export function localityMatches(l: Locality, pattern: string): boolean {
  const want = pattern.split('/');
  const have = [l.region, l.zone, l.subzone];
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '*') return true;
    if (want[i] !== have[i]) return false;
  }
  return true;
}

/** 0 same region/zone/subzone, 1 same zone, 2 same region, 3 elsewhere (4: not the failover region). */
export function localityLevel(caller: Locality, ep: Locality, failover: ReadonlyArray<{ from: string; to: string }>): number {
  if (caller.region !== ep.region) {
    const rule = failover.find((f) => f.from === caller.region);
    return rule && rule.to !== ep.region ? 4 : 3;
  }
  if (caller.zone !== ep.zone) return 2;
  return caller.subzone === ep.subzone ? 0 : 1;
}

/** A failoverPriority entry: a label key, or `key=value` to compare with that value instead of the caller's. */
export function priorityLabel(entry: string): { key: string; value?: string } {
  const i = entry.indexOf('=');
  return i < 0 ? { key: entry } : { key: entry.slice(0, i), value: entry.slice(i + 1) };
}

/**
 * Number of keys, from the first, on which the endpoint does NOT keep matching the caller. As in
 * Istio, a label both lack counts as matching.
 */
export function failoverPriorityLevel(entries: readonly string[], caller: Caller, ep: Endpoint): number {
  let matched = 0;
  for (const entry of entries) {
    const { key, value } = priorityLabel(entry);
    const want = value ?? labelValue(key, caller.labels, caller.locality, caller.network) ?? '';
    if ((labelValue(key, ep.labels, ep.locality, ep.network) ?? '') !== want) break;
    matched++;
  }
  return entries.length - matched;
}

export function hasLocality(l: Locality): boolean {
  return l.region !== '';
}

/** Whether a cluster's assignment can differ between callers (else every caller shares one). */
export function dependsOnCaller(c: UpstreamCluster): boolean {
  let v = callerDependence.get(c);
  if (v === undefined) callerDependence.set(c, (v = computeDependsOnCaller(c)));
  return v;
}

// Asked for every cluster on every translation: clusters are frozen model objects, so once each.
const callerDependence = new WeakMap<UpstreamCluster, boolean>();

function computeDependsOnCaller(c: UpstreamCluster): boolean {
  if (c.endpoints.some((e) => e.network)) return true;
  const loc = c.policy.locality;
  if (loc && !loc.enabled) return false;
  // distribute may leave localities out; failoverPriority splits even one locality by labels.
  if (loc?.distribute.length || loc?.failoverPriority.length) return true;
  const first = c.endpoints[0];
  return first !== undefined && c.endpoints.some((e) => localityKey(e.locality) !== localityKey(first.locality));
}

/** Only what the assignment of this cluster depends on: the memo key per caller. */
export function callerKey(c: UpstreamCluster, caller: Caller): string {
  const fp = c.policy.locality?.failoverPriority ?? [];
  const values = fp.map((e) => labelValue(priorityLabel(e).key, caller.labels, caller.locality, caller.network) ?? null);
  return JSON.stringify([localityKey(caller.locality), caller.network ?? '', values]);
}

interface Placed {
  key: number[];
  locality: Locality;
  target: LbTarget;
  /** For an endpoint behind a gateway: how many gateways share it (else undefined). */
  gateways?: number;
}

/**
 * The caller's view of a cluster's endpoints, grouped by priority and locality; undefined when the
 * caller has neither a locality nor a network (everything at priority 0, as for an unknown caller).
 */
export function assignLocalities(c: UpstreamCluster, caller: Caller): LocalityGroup[] | undefined {
  const loc = c.policy.locality;
  const lbOn = hasLocality(caller.locality) && (loc?.enabled ?? true);
  if (!lbOn && !caller.network) return undefined;
  const distribute = lbOn ? loc?.distribute ?? [] : [];
  const chosen = distribute.find((d) => localityMatches(caller.locality, d.from));
  const ordered = lbOn && distribute.length === 0;
  const placed: Placed[] = [];
  for (const e of c.endpoints) {
    const remote = !!(caller.network && e.network && e.network !== caller.network);
    // `remote` first: a caller's own network (and endpoints in none) before other networks.
    const key = [remote ? 1 : 0];
    if (ordered) {
      // As Istio: failoverPriority alone orders by labels only; with failover, by locality within.
      const fp = loc?.failoverPriority ?? [];
      if (fp.length) key.push(failoverPriorityLevel(fp, caller, e));
      if (!fp.length || loc?.failover.length) key.push(localityLevel(caller.locality, e.locality, loc?.failover ?? []));
    }
    if (!remote) {
      if (e.address === '') continue; // known only by its network: reachable through its gateway only
      // The endpoint itself: a frozen model object, so every view shares its LbEndpoint (endpoints.ts).
      placed.push({ key, locality: e.locality, target: e });
      continue;
    }
    // Through the endpoint's network gateway(s): the gateways share what is behind them.
    const gws = c.networkGateways?.[e.network!] ?? [];
    for (const g of gws) placed.push({ key, locality: e.locality, target: { address: g.address, port: g.port, weight: e.weight || 1 }, gateways: gws.length });
  }
  return finish(placed, chosen?.to);
}

const MAX_PRIORITY = 128;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Groups by (level, locality) with contiguous priorities. A locality weighs what it holds (each
 * endpoint behind a gateway counted once). A gateway's endpoint weight is what it carries: the
 * weights behind it divided by the number of gateways of that network; to keep that whole, the
 * group's gateway weights are all scaled by the least common multiple of the gateway counts.
 */
function finish(placed: Placed[], distribute: ReadonlyArray<{ locality: string; weight: number }> | undefined): LocalityGroup[] {
  const levels = [...new Set(placed.map((p) => JSON.stringify(p.key)))].sort((a, b) => compareKeys(JSON.parse(a), JSON.parse(b)));
  const groups = new Map<string, { locality: Locality; priority: number; items: Placed[] }>();
  for (const p of placed) {
    // Envoy allows priorities up to 128: any levels past that share the last one.
    const priority = Math.min(levels.indexOf(JSON.stringify(p.key)), MAX_PRIORITY);
    const gk = `${priority}|${localityKey(p.locality)}`;
    let g = groups.get(gk);
    if (!g) groups.set(gk, (g = { locality: p.locality, priority, items: [] }));
    g.items.push(p);
  }
  let out: LocalityGroup[] = [...groups.values()].map(({ locality, priority, items }) => {
    const lcm = items.reduce((m, p) => (p.gateways ? (m * p.gateways) / gcd(m, p.gateways) : m), 1);
    const endpoints: LbTarget[] = [];
    const byGateway = new Map<string, LbTarget>();
    let weight = 0;
    for (const p of items) {
      const w = p.target.weight || 1;
      if (!p.gateways) {
        endpoints.push(p.target); // own endpoints one by one, as without locality LB
        weight += w;
        continue;
      }
      weight += w / p.gateways;
      const k = `${p.target.address}:${p.target.port}`;
      const share = (w * lcm) / p.gateways;
      const same = byGateway.get(k);
      if (same) same.weight = (same.weight ?? 0) + share;
      else byGateway.set(k, { address: p.target.address, port: p.target.port, weight: share });
    }
    endpoints.push(...byGateway.values());
    return {
      locality,
      priority,
      weight: Math.round(weight),
      endpoints: endpoints.sort((a, b) => a.address.localeCompare(b.address) || a.port - b.port),
    };
  });
  if (distribute) out = applyDistribute(out, distribute);
  return out.sort((a, b) => a.priority - b.priority || localityKey(a.locality).localeCompare(localityKey(b.locality)));
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

/**
 * `distribute`: each `to` pattern, in order, takes the localities it matches that no earlier one
 * took, and shares its weight among them by their own weights (rounded up, as Istio does).
 * Localities no pattern takes, or that get weight 0, are left out.
 */
function applyDistribute(groups: LocalityGroup[], to: ReadonlyArray<{ locality: string; weight: number }>): LocalityGroup[] {
  const weights = new Map<LocalityGroup, number>();
  for (const t of to) {
    const taken = groups.filter((g) => !weights.has(g) && localityMatches(g.locality, t.locality));
    const total = taken.reduce((s, g) => s + g.weight, 0);
    for (const g of taken) weights.set(g, Math.ceil((g.weight * t.weight) / total));
  }
  const kept = groups.filter((g) => (weights.get(g) ?? 0) > 0).map((g) => ({ ...g, weight: weights.get(g)! }));
  // Dropping levels may leave a gap: renumber so priorities stay contiguous.
  const prios = [...new Set(kept.map((g) => g.priority))].sort((a, b) => a - b);
  return kept.map((g) => ({ ...g, priority: prios.indexOf(g.priority) }));
}

/** Whether any caller's locality or network can change its config (part of the proxy group key). */
export function topologyUse(model: Model): { locality: boolean; network: boolean } {
  const use = { locality: false, network: false };
  for (const c of model.clusters) {
    const t = clusterTopology(c);
    use.locality ||= t.locality;
    use.network ||= t.network;
  }
  return use;
}

/** What one cluster adds to topologyUse (counted per cluster by xds/proxy-groups.ts). */
export function clusterTopology(c: UpstreamCluster): { locality: boolean; network: boolean } {
  const eds = c.resolution === 'STATIC' && dependsOnCaller(c);
  return { locality: eds, network: eds && hasNetwork(c) };
}

// Per cluster object, as dependsOnCaller: asked on every model change, for every cluster.
const networked = new WeakMap<UpstreamCluster, boolean>();

function hasNetwork(c: UpstreamCluster): boolean {
  let v = networked.get(c);
  if (v === undefined) networked.set(c, (v = c.endpoints.some((e) => e.network)));
  return v;
}
