// DestinationRule (networking.istio.io): load balancing, connection pools, outlier detection, subsets.
import { z } from 'zod';
import { exportTo } from './export-to.ts';
import {
  PortSelector,
  UINT32_MAX,
  atMostOne,
  dnsLabel,
  duration,
  exactlyOne,
  headerName,
  host,
  intRange,
  istioEnum,
  labels,
  percent,
  positiveLimit,
  setFields,
  uniqueBy,
  withRule,
} from './common.ts';
import { LocalityLbSetting } from './locality-lb.ts';
import { ClientTLSSettings } from './client-tls.ts';

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** An attribute of a generated cookie, e.g. SameSite=Strict (Envoy's cookie `attributes`). */
export const CookieAttribute = z.strictObject({
  name: headerName,
  value: z.string().optional(),
});

export const HTTPCookie = withRule(
  z.strictObject({
    name: z.string().min(1, { error: 'must not be empty' }),
    /** "0s" makes it a session cookie. */
    ttl: duration({ allowZero: true }).optional(),
    path: z.string().optional(),
    attributes: z.array(CookieAttribute).optional(),
  }),
  (v, report) => uniqueBy(v['attributes'], 'name', 'cookie attribute name', report, ['attributes']),
);

/** Slow start: a new endpoint's share grows over `duration` (Envoy slow_start_config). */
export const WarmupConfiguration = z.strictObject({
  duration: duration(),
  /** The share a new endpoint starts with, percent of its weight (Envoy's default 10). */
  minimumPercent: z.number().min(0, { error: 'must be from 0 to 100' }).max(100, { error: 'must be from 0 to 100' }).optional(),
  /** How fast the share grows: 1 is linear, higher is faster at first (Envoy's default 1). */
  aggression: z.number().min(1, { error: 'must be at least 1' }).optional(),
});

export const RingHash = z.strictObject({
  minimumRingSize: intRange(1, 8_388_608).optional(),
});

export const MagLev = z.strictObject({
  tableSize: intRange(1, 5_000_011)
    .refine(isPrime, { error: 'must be a prime number (Envoy requires it), e.g. 65537' })
    .optional(),
});

const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const;

export const ConsistentHashLB = withRule(
  z.strictObject({
    httpHeaderName: headerName.optional(),
    httpCookie: HTTPCookie.optional(),
    useSourceIp: z.boolean().optional(),
    httpQueryParameterName: z.string().min(1, { error: 'must not be empty' }).optional(),
    ringHash: RingHash.optional(),
    maglev: MagLev.optional(),
    /** Legacy form of ringHash.minimumRingSize. */
    minimumRingSize: intRange(1, 8_388_608).optional(),
  }),
  (v, report) => {
    exactlyOne(HASH_KEYS)(v, report);
    atMostOne(['ringHash', 'maglev', 'minimumRingSize'])(v, report);
  },
);

export const LoadBalancerSettings = withRule(
  z.strictObject({
    // LEAST_CONN is Istio's deprecated name for LEAST_REQUEST (the same Envoy policy).
    simple: istioEnum(['ROUND_ROBIN', 'LEAST_REQUEST', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH'], ['UNSPECIFIED']).optional(),
    consistentHash: ConsistentHashLB.optional(),
    localityLbSetting: LocalityLbSetting.optional(),
    warmup: WarmupConfiguration.optional(),
    /** Istio's older form of warmup.duration; warmup wins when both are set. */
    warmupDurationSecs: duration().optional(),
  }),
  // Without simple or consistentHash the algorithm stays the default (LEAST_REQUEST), as in Istio.
  (v, report) => atMostOne(['simple', 'consistentHash'])(v, report),
);

export const ConnectionPoolSettings = withRule(
  z.strictObject({
    tcp: z
      .strictObject({
        maxConnections: positiveLimit.optional(),
        connectTimeout: duration().optional(),
      })
      .optional(),
    http: z
      .strictObject({
        http1MaxPendingRequests: positiveLimit.optional(),
        http2MaxRequests: positiveLimit.optional(),
        /** 1 disables keep-alive; leave out for unlimited. */
        maxRequestsPerConnection: positiveLimit.optional(),
        maxRetries: positiveLimit.optional(),
        /** "0s" disables the idle timeout. */
        idleTimeout: duration({ allowZero: true }).optional(),
        maxConcurrentStreams: positiveLimit.optional(),
        /** HTTP/2 PINGs on upstream connections (Envoy http2 connection_keepalive). */
        http2KeepAlive: z
          .strictObject({
            interval: duration().optional(),
            /** Required, as in Istio (Envoy needs it). */
            timeout: duration(),
          })
          .optional(),
        /** UPGRADE: an HTTP/1.1 port is spoken to as HTTP/2 upstream. */
        h2UpgradePolicy: istioEnum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
      })
      .optional(),
  }),
  (v, report) => {
    if (setFields(v, ['tcp', 'http']).length === 0) report([], 'an empty connectionPool sets nothing, which Istio does not accept: set tcp and/or http, or leave connectionPool out');
  },
);

export const OutlierDetection = withRule(
  z.strictObject({
    /** 0 disables this kind of ejection. */
    consecutive5xxErrors: intRange(0, UINT32_MAX).optional(),
    consecutiveGatewayErrors: intRange(0, UINT32_MAX).optional(),
    consecutiveLocalOriginFailures: intRange(0, UINT32_MAX).optional(),
    splitExternalLocalOriginErrors: z.boolean().optional(),
    interval: duration().optional(),
    baseEjectionTime: duration().optional(),
    maxEjectionPercent: percent.optional(),
    minHealthPercent: percent.optional(),
  }),
  (v, report) => {
    if (v['consecutiveLocalOriginFailures'] !== undefined && v['splitExternalLocalOriginErrors'] !== true) {
      report(['consecutiveLocalOriginFailures'], 'has effect only when splitExternalLocalOriginErrors is true');
    }
  },
);

const POLICY_SECTIONS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'] as const;

export const PortTrafficPolicy = withRule(
  z.strictObject({
    port: PortSelector,
    loadBalancer: LoadBalancerSettings.optional(),
    connectionPool: ConnectionPoolSettings.optional(),
    outlierDetection: OutlierDetection.optional(),
    tls: ClientTLSSettings.optional(),
  }),
  (v, report) => {
    if (setFields(v, POLICY_SECTIONS).length === 0) report([], `a port-level policy that sets nothing but its port is not accepted (as in Istio): set one of ${POLICY_SECTIONS.join(', ')}, or remove the entry`);
  },
);

export const TrafficPolicy = withRule(
  z.strictObject({
    loadBalancer: LoadBalancerSettings.optional(),
    connectionPool: ConnectionPoolSettings.optional(),
    outlierDetection: OutlierDetection.optional(),
    tls: ClientTLSSettings.optional(),
    portLevelSettings: z.array(PortTrafficPolicy).optional(),
  }),
  (v, report) => {
    if (setFields(v, [...POLICY_SECTIONS, 'portLevelSettings']).length === 0) {
      report([], `an empty trafficPolicy sets nothing, which Istio does not accept: set one of ${POLICY_SECTIONS.join(', ')}, portLevelSettings, or leave trafficPolicy out`);
    }
    uniqueBy(v['portLevelSettings'], 'port', 'port', report, ['portLevelSettings']);
  },
);

export const Subset = z.strictObject({
  name: dnsLabel,
  labels: labels.optional(),
  trafficPolicy: TrafficPolicy.optional(),
});

export const DestinationRuleSpec = withRule(
  z.strictObject({
    host: host({ wildcard: true, star: true }),
    trafficPolicy: TrafficPolicy.optional(),
    subsets: z.array(Subset).optional(),
    exportTo: exportTo.optional(),
  }),
  (v, report) => uniqueBy(v['subsets'], 'name', 'subset name', report, ['subsets']),
);

export type DestinationRuleSpec = z.infer<typeof DestinationRuleSpec>;
export type TrafficPolicy = z.infer<typeof TrafficPolicy>;
export type PortTrafficPolicy = z.infer<typeof PortTrafficPolicy>;
export type Subset = z.infer<typeof Subset>;
export type LoadBalancerSettings = z.infer<typeof LoadBalancerSettings>;
export type ConsistentHashLB = z.infer<typeof ConsistentHashLB>;
export type HTTPCookie = z.infer<typeof HTTPCookie>;
export type ConnectionPoolSettings = z.infer<typeof ConnectionPoolSettings>;
export type OutlierDetection = z.infer<typeof OutlierDetection>;
