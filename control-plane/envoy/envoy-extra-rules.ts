// Checks Envoy performs in C++ when it loads config, beyond the PGV annotations in the protos.
// Each one turns into a NACK (or a rejected listener) in a real Envoy, so we refuse it up front.
import protobuf from 'protobufjs';
import { nameOf } from './protos.ts';
import { joinPath, toBigInt, type Violation } from './proto-json.ts';
import { compileRe2, forEachMessage } from './validate-rules.ts';

type Obj = Record<string, any>;
type Rule = (m: Obj, path: string, add: (path: string, message: string) => void) => void;

const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';
const MIN_FILL_INTERVAL_NS = 50_000_000n;
const UINT32_MAX = 4_294_967_295n;

const wrapped = (w: Obj | null | undefined): bigint => toBigInt(w?.value ?? 0);
const durationNs = (d: Obj): bigint => toBigInt(d.seconds) * 1_000_000_000n + toBigInt(d.nanos);

const RULES: Record<string, Rule> = {
  // Envoy compiles every safe_regex with RE2; JS RegExp accepts lookaround, backreferences, etc.
  'envoy.type.matcher.v3.RegexMatcher': (m, path, add) => {
    const re = compileRe2(String(m.regex ?? ''));
    if (re instanceof Error) add(joinPath(path, 'regex'), `not a valid RE2 regex ${JSON.stringify(m.regex)}: ${re.message}`);
  },

  'envoy.config.route.v3.WeightedCluster': (m, path, add) => {
    const clusters = (m.clusters ?? []) as Obj[];
    const sum = clusters.reduce((s, c) => s + wrapped(c.weight), 0n);
    if (sum === 0n) add(joinPath(path, 'clusters'), 'sum of weighted cluster weights must be greater than 0');
    if (sum > UINT32_MAX) add(joinPath(path, 'clusters'), `sum of weighted cluster weights ${sum} exceeds uint32 max`);
    const total = wrapped(m.total_weight);
    if (m.total_weight != null && total > 0n && total !== sum) {
      add(joinPath(path, 'total_weight'), `total_weight ${total} does not equal the sum of cluster weights ${sum}`);
    }
  },

  'envoy.config.route.v3.RouteAction': (m, path, add) => {
    if (m.prefix_rewrite && m.regex_rewrite != null) add(joinPath(path, 'regex_rewrite'), 'cannot specify both prefix_rewrite and regex_rewrite');
  },

  'envoy.config.route.v3.RouteConfiguration': (m, path, add) => {
    const names = new Map<string, number>();
    const domains = new Map<string, string>();
    ((m.virtual_hosts ?? []) as Obj[]).forEach((vh, i) => {
      const vp = joinPath(path, `virtual_hosts[${i}]`);
      const name = String(vh.name ?? '');
      if (names.has(name)) add(`${vp}.name`, `duplicate virtual host name "${name}" (also virtual_hosts[${names.get(name)}])`);
      else names.set(name, i);
      ((vh.domains ?? []) as string[]).forEach((d, j) => {
        const key = d.toLowerCase(); // Envoy matches domains case-insensitively
        const dp = `${vp}.domains[${j}]`;
        const first = domains.get(key);
        if (first !== undefined) {
          add(dp, d === '*' ? `only one wildcard "*" domain is allowed (also at ${first})` : `duplicate domain "${d}": virtual host domains must be unique (also at ${first})`);
        } else domains.set(key, dp);
      });
    });
  },

  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager': (m, path, add) => {
    const filters = (m.http_filters ?? []) as Obj[];
    const fp = joinPath(path, 'http_filters');
    const names = new Map<string, number>();
    let router = -1;
    filters.forEach((f, i) => {
      const name = String(f.name ?? '');
      if (names.has(name)) add(`${fp}[${i}].name`, `duplicate HTTP filter name "${name}" (also http_filters[${names.get(name)}])`);
      else names.set(name, i);
      if (typeof f.typed_config?.type_url === 'string' && f.typed_config.type_url.endsWith(`/${ROUTER_TYPE}`)) router = i;
    });
    if (router < 0) add(fp, `the router filter (typed_config ${ROUTER_TYPE}) must be present and last`);
    else if (router !== filters.length - 1) add(`${fp}[${router}]`, `the router filter must be the last HTTP filter (it is ${router + 1} of ${filters.length})`);
  },

  'envoy.config.listener.v3.Listener': (m, path, add) => {
    const names = new Map<string, number>();
    const matches = new Map<string, number>();
    ((m.filter_chains ?? []) as Obj[]).forEach((fc, i) => {
      const name = String(fc.name ?? '');
      const fcp = joinPath(path, `filter_chains[${i}]`);
      if (name !== '' && names.has(name)) add(`${fcp}.name`, `duplicate filter chain name "${name}" (also filter_chains[${names.get(name)}])`);
      else names.set(name, i);
      for (const key of matchKeys(fc.filter_chain_match ?? {})) {
        const other = matches.get(key);
        if (other !== undefined && other !== i) {
          add(`${fcp}.filter_chain_match`, `multiple filter chains with the same matching rules are defined (also filter_chains[${other}])`);
          break;
        }
        matches.set(key, i);
      }
    });
  },

  'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit': (m, path, add) => {
    const fi = m.token_bucket?.fill_interval;
    if (fi != null && durationNs(fi) < MIN_FILL_INTERVAL_NS) {
      add(joinPath(path, 'token_bucket.fill_interval'), 'local rate limit token bucket fill_interval must be >= 50ms');
    }
  },

  'envoy.config.cluster.v3.Cluster': (m, path, add) => {
    if (!m.name) add(joinPath(path, 'name'), 'cluster name must be non-empty');
    const isEds = m.type === 3 && m.cluster_type == null; // DiscoveryType.EDS
    if (isEds && m.eds_cluster_config == null) add(joinPath(path, 'eds_cluster_config'), 'an EDS cluster needs eds_cluster_config');
    else if (isEds && m.eds_cluster_config.eds_config == null) add(joinPath(path, 'eds_cluster_config.eds_config'), 'an EDS cluster needs eds_cluster_config.eds_config (e.g. {"ads": {}})');
  },

  'envoy.config.endpoint.v3.ClusterLoadAssignment': (m, path, add) => {
    const used = new Set(((m.endpoints ?? []) as Obj[]).map((e) => Number(e.priority ?? 0)));
    const max = Math.max(-1, ...used);
    const missing = [];
    for (let p = 0; p <= max; p++) if (!used.has(p)) missing.push(p);
    if (missing.length > 0) {
      add(joinPath(path, 'endpoints'), `priorities must be contiguous from 0; missing priority ${missing.join(', ')} (used: ${[...used].sort((a, b) => a - b).join(', ')})`);
    }
  },
};

// Envoy's filter chain matcher indexes every combination of the match lists; two chains sharing
// any combination are rejected. Expanding the lists finds that overlap (capped, else exact match).
function matchKeys(fcm: Obj): string[] {
  const cidrs = (l: Obj[] | undefined): string[] => (l ?? []).map((c) => `${c.address_prefix}/${c.prefix_len?.value ?? 0}`);
  const dims: string[][] = [
    [String(fcm.destination_port?.value ?? '')],
    cidrs(fcm.prefix_ranges),
    cidrs(fcm.direct_source_prefix_ranges),
    (fcm.server_names ?? []).map((s: string) => s.toLowerCase()),
    [String(fcm.transport_protocol ?? '')],
    fcm.application_protocols ?? [],
    [String(fcm.source_type ?? 0)],
    cidrs(fcm.source_prefix_ranges),
    (fcm.source_ports ?? []).map(String),
  ].map((d: string[]) => (d.length === 0 ? [''] : [...new Set(d)].sort()));
  const size = dims.reduce((n, d) => n * d.length, 1);
  if (size > 10_000) return [JSON.stringify(dims)];
  let keys = [''];
  for (const d of dims) keys = keys.flatMap((k) => d.map((v) => `${k}|${v}`));
  return keys;
}

/** Fields and enum values annotated disallowed_by_default are rejected by a default Envoy. */
const disallowedCache = new WeakMap<protobuf.Type, protobuf.Field[]>();
function checkDisallowed(type: protobuf.Type, m: Obj, path: string, add: (path: string, message: string) => void): void {
  let fields = disallowedCache.get(type);
  if (!fields) {
    fields = type.fieldsArray.filter((f) => f.options?.['(envoy.annotations.disallowed_by_default)'] === true
      || (f.resolvedType instanceof protobuf.Enum && Object.values(f.resolvedType.valuesOptions ?? {})
        .some((o) => o?.['(envoy.annotations.disallowed_by_default_enum)'] === true)));
    disallowedCache.set(type, fields);
  }
  for (const f of fields) {
    const v = m[f.name];
    if (v == null || (Array.isArray(v) && v.length === 0)) continue;
    if (f.options?.['(envoy.annotations.disallowed_by_default)'] === true && (v !== 0 && v !== '' && v !== false)) {
      add(joinPath(path, f.name), `field "${f.name}" is deprecated and disallowed by default in Envoy`);
    }
    const e = f.resolvedType;
    // An implicit-presence enum at 0 is "not set", so only explicit values count.
    if (e instanceof protobuf.Enum && !f.repeated && (v !== 0 || (f.partOf && Object.prototype.hasOwnProperty.call(m, f.name)))) {
      const name = e.valuesById[v as number];
      if (name && e.valuesOptions?.[name]?.['(envoy.annotations.disallowed_by_default_enum)'] === true) {
        add(joinPath(path, f.name), `enum value ${name} is deprecated and disallowed by default in Envoy`);
      }
    }
  }
}

/** Envoy's own (non-PGV) load-time checks over a parsed message and everything nested in it. */
export function checkEnvoyRules(type: protobuf.Type, message: protobuf.Message | Obj, path = ''): Violation[] {
  const out: Violation[] = [];
  const add = (p: string, msg: string): void => void out.push({ path: p, message: msg });
  forEachMessage(type, message as Obj, path, (t, m, p) => {
    RULES[nameOf(t)]?.(m, p, add);
    checkDisallowed(t, m, p, add);
  });
  return out;
}
