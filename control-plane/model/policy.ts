// DestinationRule traffic policies, resolved the way Istio layers them: the rule's top level, then
// its settings for the port, then the subset's policy, then the subset's settings for the port.
// Each layer replaces whole sections (loadBalancer, connectionPool, outlierDetection).
import { durationMs } from './duration.ts';
import type { ConnectionPoolIn, LoadBalancerIn, OutlierDetectionIn, PolicyIn, TrafficPolicyIn } from './input.ts';
import type { LocalityLbSettingIn } from './input.ts';
import type { ClientTlsIn } from './input.ts';
import type { ClientTls, ClusterPolicy, ConnectionPool, LbPolicy, LocalityLbPolicy, OutlierDetection } from './types.ts';

function ms(d: string | undefined): number | undefined {
  return d === undefined ? undefined : durationMs(d);
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function loadBalancer(lb: LoadBalancerIn): LbPolicy | undefined {
  if (lb.simple) {
    if (lb.simple === 'ROUND_ROBIN' || lb.simple === 'LEAST_REQUEST' || lb.simple === 'RANDOM') {
      return { kind: 'simple', simple: lb.simple };
    }
    // Istio's deprecated LEAST_CONN is LEAST_REQUEST (Envoy has no other least-connections policy).
    if (lb.simple === 'LEAST_CONN') return { kind: 'simple', simple: 'LEAST_REQUEST' };
    if (lb.simple === 'PASSTHROUGH') return { kind: 'passthrough' };
    return undefined;
  }
  const ch = lb.consistentHash;
  if (!ch) return undefined;
  const key: Extract<LbPolicy, { kind: 'hash' }>['key'] = ch.httpHeaderName
    ? { header: ch.httpHeaderName.toLowerCase() }
    : ch.httpCookie
      ? { cookie: defined({ name: ch.httpCookie.name, ttlSeconds: ch.httpCookie.ttl ? durationMs(ch.httpCookie.ttl) / 1000 : undefined, path: ch.httpCookie.path, attributes: ch.httpCookie.attributes?.map((a) => defined({ name: a.name, value: a.value })) }) }
      : ch.httpQueryParameterName
        ? { queryParameter: ch.httpQueryParameterName }
        : { sourceIp: true };
  return defined({
    kind: 'hash' as const,
    algorithm: ch.maglev ? ('MAGLEV' as const) : ('RING_HASH' as const),
    minimumRingSize: ch.ringHash?.minimumRingSize ?? ch.minimumRingSize,
    maglevTableSize: ch.maglev?.tableSize,
    key,
  });
}

function connectionPool(cp: ConnectionPoolIn): ConnectionPool {
  return defined({
    maxConnections: cp.tcp?.maxConnections,
    connectTimeoutMs: ms(cp.tcp?.connectTimeout),
    maxPendingRequests: cp.http?.http1MaxPendingRequests,
    maxRequests: cp.http?.http2MaxRequests,
    maxRequestsPerConnection: cp.http?.maxRequestsPerConnection,
    maxRetries: cp.http?.maxRetries,
    idleTimeoutMs: ms(cp.http?.idleTimeout),
    maxConcurrentStreams: cp.http?.maxConcurrentStreams,
    http2KeepAlive: keepAlive(cp.http?.http2KeepAlive),
    h2Upgrade: cp.http?.h2UpgradePolicy === 'UPGRADE' || undefined,
  });
}

function keepAlive(k: { interval?: string; timeout: string } | undefined): ConnectionPool['http2KeepAlive'] {
  return k ? defined({ intervalMs: ms(k.interval), timeoutMs: durationMs(k.timeout) }) : undefined;
}

function outlierDetection(od: OutlierDetectionIn): OutlierDetection {
  return defined({
    consecutive5xxErrors: od.consecutive5xxErrors,
    consecutiveGatewayErrors: od.consecutiveGatewayErrors,
    consecutiveLocalOriginFailures: od.consecutiveLocalOriginFailures,
    splitExternalLocalOriginErrors: od.splitExternalLocalOriginErrors,
    intervalMs: ms(od.interval),
    baseEjectionTimeMs: ms(od.baseEjectionTime),
    maxEjectionPercent: od.maxEjectionPercent,
    minHealthPercent: od.minHealthPercent,
  });
}

export function localityPolicy(s: LocalityLbSettingIn): LocalityLbPolicy {
  return {
    enabled: s.enabled !== false,
    failover: (s.failover ?? []).map((f) => ({ from: f.from, to: f.to })),
    failoverPriority: [...(s.failoverPriority ?? [])],
    distribute: (s.distribute ?? []).map((d) => ({ from: d.from, to: Object.entries(d.to).map(([locality, weight]) => ({ locality, weight })) })),
  };
}

function layer(into: ClusterPolicy, p: PolicyIn | undefined, mesh: LocalityLbSettingIn | undefined): void {
  if (!p) return;
  if (p.loadBalancer) {
    // The whole loadBalancer section is replaced, localityLbSetting included (as in Istio): without
    // one of its own it falls back to the mesh's.
    const lb = loadBalancer(p.loadBalancer);
    if (lb) into.loadBalancer = lb;
    else delete into.loadBalancer;
    const own = p.loadBalancer.localityLbSetting;
    // A rule's setting replaces the mesh's, but leaves `enabled` to the mesh unless it says (Istio).
    if (own) into.locality = { ...localityPolicy(own), enabled: own.enabled ?? mesh?.enabled !== false };
    else if (mesh) into.locality = localityPolicy(mesh);
    else delete into.locality;
    const w = p.loadBalancer.warmup;
    const window = w?.duration ?? p.loadBalancer.warmupDurationSecs;
    if (window) into.slowStart = defined({ windowMs: durationMs(window), minimumPercent: w?.minimumPercent, aggression: w?.aggression });
    else delete into.slowStart;
  }
  if (p.connectionPool) into.connectionPool = connectionPool(p.connectionPool);
  if (p.outlierDetection) into.outlierDetection = outlierDetection(p.outlierDetection);
  if (p.tls) into.tls = clientTls(p.tls);
}

function clientTls(t: ClientTlsIn): ClientTls {
  return defined({
    mode: t.mode,
    sni: t.sni,
    subjectAltNames: t.subjectAltNames?.length ? [...t.subjectAltNames] : undefined,
    insecureSkipVerify: t.insecureSkipVerify || undefined,
    clientCertificate: t.clientCertificate,
    privateKey: t.privateKey,
    caCertificates: t.caCertificates,
    credentialName: t.credentialName || undefined,
  });
}

function forPort(tp: TrafficPolicyIn | undefined, port: number): PolicyIn | undefined {
  return tp?.portLevelSettings?.find((s) => s.port.number === port);
}

/** `meshLocality`: MeshConfig's localityLbSetting, the default under every rule's. */
export function resolvePolicy(top: TrafficPolicyIn | undefined, subset: TrafficPolicyIn | undefined, port: number, meshLocality?: LocalityLbSettingIn): ClusterPolicy {
  const out: ClusterPolicy = meshLocality ? { locality: localityPolicy(meshLocality) } : {};
  layer(out, top, meshLocality);
  layer(out, forPort(top, port), meshLocality);
  layer(out, subset, meshLocality);
  layer(out, forPort(subset, port), meshLocality);
  return out;
}
