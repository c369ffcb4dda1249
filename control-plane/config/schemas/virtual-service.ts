// VirtualService (networking.istio.io): the HTTP routing subset meshpilot supports.
import { z } from 'zod';
import { exportTo } from './export-to.ts';
import {
  HeaderStringMatch,
  MethodStringMatch,
  QueryParamStringMatch,
  StringMatch,
  dnsLabel,
  dnsSubdomain,
  duration,
  exactlyOne,
  headerName,
  headerValue,
  host,
  intRange,
  isAuthorityHeader,
  istioEnum,
  isRecord,
  parseDuration,
  labels,
  matchHeaderName,
  formattedHeaderValue,
  mutableHeaderName,
  portNumber,
  re2Regex,
  setFields,
  settableHeaderName,
  withRule,
} from './common.ts';
import { GRPC_STATUS_CODES } from './grpc-status.ts';
import { Destination } from './destination.ts';
import { l4SpecRules, TCPRoute, TLSRoute } from './virtual-service-l4.ts';
import { gatewayName, MESH_GATEWAY } from './gateway-name.ts';

/** The gateway name that means every sidecar and proxyless gRPC client. */
export { gatewayNameProblem, MESH_GATEWAY } from './gateway-name.ts';

export const HTTPMatchRequest = withRule(
  z.strictObject({
    name: z.string().optional(),
    uri: StringMatch.optional(),
    method: MethodStringMatch.optional(),
    headers: z.record(matchHeaderName, HeaderStringMatch).optional(),
    withoutHeaders: z.record(matchHeaderName, HeaderStringMatch).optional(),
    queryParams: z.record(z.string().min(1, { error: 'query parameter name must not be empty' }), QueryParamStringMatch).optional(),
    port: portNumber.optional(),
    sourceLabels: labels.optional(),
    sourceNamespace: dnsLabel.optional(),
    ignoreUriCase: z.boolean().optional(),
    /** Narrows the VirtualService's gateways for this match (mesh/name/ns/name). */
    gateways: z.array(gatewayName).optional(),
  }),
  (v, report) => {
    if (v['ignoreUriCase'] !== true) return;
    const uri = v['uri'];
    if (!isRecord(uri)) report(['ignoreUriCase'], 'has no effect without a uri match');
    else if (uri['regex'] !== undefined) report(['ignoreUriCase'], 'has no effect on a regex uri match (as in Istio); use (?i) in the regex');
  },
);

export { Destination };


/** Retry conditions Envoy understands (x-envoy-retry-on and x-envoy-retry-grpc-on). */
export const RETRY_ON_CONDITIONS: ReadonlySet<string> = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/** Why a retryOn list is invalid, or undefined. Tokens are comma-separated; numbers are HTTP status codes. */
export function retryOnProblem(list: string): string | undefined {
  const tokens = list.split(',').map((t) => t.trim());
  for (const t of tokens) {
    if (t === '') return 'empty retry condition in the comma-separated list';
    if (/^\d+$/.test(t)) {
      const code = Number(t);
      if (code < 100 || code > 599) return `${t} is not an HTTP status code (100-599)`;
    } else if (!RETRY_ON_CONDITIONS.has(t)) {
      return `unknown retry condition ${JSON.stringify(t)} (known: ${[...RETRY_ON_CONDITIONS].join(', ')}, or an HTTP status code such as 503)`;
    }
  }
  return undefined;
}

export const HTTPRetry = withRule(
  z.strictObject({
    /** 0 turns retries off. */
    attempts: intRange(0, 2_147_483_647).optional(),
    perTryTimeout: duration().optional(),
    retryOn: z
      .string()
      .superRefine((s, ctx) => {
        const problem = retryOnProblem(s);
        if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
      })
      .optional(),
  }),
  // Istio refuses a retry policy that configures retries it has just turned off.
  (v, report) => {
    if (v['attempts'] !== 0) return;
    const set = setFields(v, ['perTryTimeout', 'retryOn']);
    if (set.length) report(['attempts'], `attempts: 0 turns retries off, so ${set.join(' and ')} would never apply (as Istio, meshpilot refuses this): remove ${set.length > 1 ? 'them' : 'it'}, or set attempts to 1 or more`);
  },
);

const HeaderOperations = z.strictObject({
  // set: `:authority` / `Host` rewrite the authority (model/routes.ts), as in Istio.
  set: z.record(settableHeaderName, formattedHeaderValue).optional(),
  add: z.record(mutableHeaderName, formattedHeaderValue).optional(),
  remove: z.array(mutableHeaderName).optional(),
});

export const Headers = withRule(
  z.strictObject({
    request: HeaderOperations.optional(),
    response: HeaderOperations.optional(),
  }),
  (v, report) => {
    const response = v['response'];
    const set = isRecord(response) ? response['set'] : undefined;
    if (!isRecord(set)) return;
    for (const k of Object.keys(set)) {
      if (isAuthorityHeader(k)) report(['response', 'set', k], 'a response has no authority: only request headers can set :authority or Host');
    }
  },
);

export const HTTPRouteDestination = z.strictObject({
  destination: Destination,
  /** Header changes for the calls sent to this destination (with several: per weighted cluster). */
  headers: Headers.optional(),
  // Relative shares, as in Istio (an int32 there); a total other than 100 is a warning (model/routes.ts).
  weight: intRange(0, 2_147_483_647).optional(),
});

export const RegexRewrite = z.strictObject({
  match: re2Regex,
  rewrite: headerValue,
});

export const HTTPRewrite = withRule(
  z.strictObject({
    uri: headerValue.min(1, { error: 'must not be empty' }).optional(),
    authority: headerValue.min(1, { error: 'must not be empty' }).optional(),
    uriRegexRewrite: RegexRewrite.optional(),
  }),
  (v, report) => {
    const set = setFields(v, ['uri', 'authority', 'uriRegexRewrite']);
    if (set.length === 0) report([], 'rewrite must set uri, authority or uriRegexRewrite');
    if (set.includes('uri') && set.includes('uriRegexRewrite')) report(['uriRegexRewrite'], 'uri and uriRegexRewrite cannot both be set');
  },
);

export const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

export const HTTPRedirect = withRule(
  z.strictObject({
    uri: headerValue.min(1, { error: 'must not be empty' }).optional(),
    authority: headerValue.min(1, { error: 'must not be empty' }).optional(),
    port: portNumber.optional(),
    scheme: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9+.-]*$/, { error: 'invalid URI scheme' })
      .optional(),
    redirectCode: z
      .number()
      .refine((n) => (REDIRECT_CODES as readonly number[]).includes(n), { error: `must be one of ${REDIRECT_CODES.join(', ')}` })
      .optional(),
  }),
  (v, report) => {
    // A redirect that changes nothing sends the client back to the same URL, forever.
    if (setFields(v, ['uri', 'authority', 'port', 'scheme']).length === 0) report([], 'redirect must set uri, authority, port or scheme');
  },
);

// ---- direct responses ----------------------------------------------------------------------

/** Envoy refuses a direct response body larger than its route configuration's limit (4096 bytes by default). */
export const DIRECT_RESPONSE_BODY_MAX = 4096;

export const HTTPBody = withRule(
  z.strictObject({
    string: z.string().optional(),
    /** Base64, as in Istio's proto JSON. */
    bytes: z
      .string()
      .refine((b) => /^[A-Za-z0-9+/]*={0,2}$/.test(b) && b.length % 4 === 0, { error: 'must be base64 (proto JSON bytes)' })
      .optional(),
  }),
  (v, report) => {
    exactlyOne(['string', 'bytes'])(v, report);
    const size = typeof v['string'] === 'string' ? Buffer.byteLength(v['string']) : typeof v['bytes'] === 'string' ? Buffer.from(v['bytes'], 'base64').length : 0;
    if (size > DIRECT_RESPONSE_BODY_MAX) report([], `the body is ${size} bytes; Envoy takes at most ${DIRECT_RESPONSE_BODY_MAX} in a direct response`);
  },
);

export const HTTPDirectResponse = z.strictObject({
  status: intRange(200, 599, 'an HTTP status code'),
  body: HTTPBody.optional(),
});

// ---- CORS ----------------------------------------------------------------------------------

/** The methods Istio's validation accepts in allowMethods. */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

const corsHeaderName = z.union([z.literal('*'), headerName]);

export const CorsPolicy = withRule(
  z.strictObject({
    allowOrigins: z
      .array(
        withRule(StringMatch, (v, report) => {
          for (const k of ['exact', 'prefix'] as const) if (v[k] === '') report([k], 'must not be empty');
        }),
      )
      .optional(),
    /** Istio's deprecated form: exact origins (used only when allowOrigins is not set). */
    allowOrigin: z.array(z.string().min(1, { error: 'must not be empty' })).optional(),
    allowMethods: z
      .array(
        z.string().refine((m) => (HTTP_METHODS as readonly string[]).includes(m), { error: `must be an HTTP method: ${HTTP_METHODS.join(', ')}` }),
      )
      .optional(),
    allowHeaders: z.array(corsHeaderName).optional(),
    exposeHeaders: z.array(corsHeaderName).optional(),
    maxAge: duration()
      .superRefine((d, ctx) => {
        const r = parseDuration(d);
        if ('ms' in r && r.ms % 1000 !== 0) ctx.addIssue({ code: 'custom', message: 'must be whole seconds (browsers cache preflights by the second; as in Istio)', input: d });
      })
      .optional(),
    allowCredentials: z.boolean().optional(),
    unmatchedPreflights: istioEnum(['FORWARD', 'IGNORE', 'UNSPECIFIED']).optional(),
  }),
  (v, report) => {
    if (v['allowOrigins'] !== undefined && v['allowOrigin'] !== undefined) report(['allowOrigin'], 'allowOrigin and allowOrigins cannot both be set; list every origin in allowOrigins');
  },
);

// ---- fault injection and mirroring ----------------------------------------------------------

const PERCENT_ERROR = 'must be a percentage from 0 to 100 (decimals allowed, e.g. 0.1)';

/** Istio's Percent: a double from 0 to 100. */
export const Percent = z.strictObject({
  value: z.number({ error: PERCENT_ERROR }).min(0, { error: PERCENT_ERROR }).max(100, { error: PERCENT_ERROR }),
});

const GRPC_ABORT_NAMES = Object.keys(GRPC_STATUS_CODES).filter((n) => n !== 'OK');

export const HTTPFaultDelay = withRule(
  z.strictObject({
    fixedDelay: duration().optional(),
    percentage: Percent.optional(),
    /** Istio's deprecated integer percentage. */
    percent: intRange(0, 100, 'a percentage').optional(),
  }),
  (v, report) => {
    if (v['fixedDelay'] === undefined) report([], 'delay must set fixedDelay');
    if (v['percentage'] !== undefined && v['percent'] !== undefined) report(['percent'], 'percentage and the deprecated percent cannot both be set; use percentage');
  },
);

export const HTTPFaultAbort = withRule(
  z.strictObject({
    httpStatus: intRange(200, 599, 'an HTTP status code').optional(),
    grpcStatus: z
      .string({ error: 'must be a gRPC status name such as UNAVAILABLE' })
      .superRefine((s, ctx) => {
        if (s === 'OK') ctx.addIssue({ code: 'custom', message: 'OK is not an error: an abort needs an error status such as UNAVAILABLE', input: s });
        else if (!GRPC_ABORT_NAMES.includes(s)) ctx.addIssue({ code: 'custom', message: `unknown gRPC status ${JSON.stringify(s)} (one of ${GRPC_ABORT_NAMES.join(', ')})`, input: s });
      })
      .optional(),
    percentage: Percent.optional(),
  }),
  exactlyOne(['httpStatus', 'grpcStatus']),
);

export const HTTPFaultInjection = withRule(
  z.strictObject({
    delay: HTTPFaultDelay.optional(),
    abort: HTTPFaultAbort.optional(),
  }),
  (v, report) => {
    if (v['delay'] === undefined && v['abort'] === undefined) report([], 'fault must set delay, abort or both');
  },
);

export const HTTPMirrorPolicy = z.strictObject({
  destination: Destination,
  percentage: Percent.optional(),
});

/** Cross-field rules of http[].mirror, mirrorPercentage and mirrors. */
function mirrorRules(v: Record<string, unknown>, report: (path: (string | number)[], message: string) => void): void {
  const mirror = v['mirror'] !== undefined;
  const mirrors = v['mirrors'] !== undefined;
  if (mirror && mirrors) report(['mirrors'], 'mirror and mirrors cannot both be set; list every target in mirrors');
  if (v['mirrorPercentage'] !== undefined && !mirror) {
    report(['mirrorPercentage'], mirrors ? 'applies to mirror only; give each entry of mirrors its own percentage' : 'has no effect without mirror');
  }
}

/** http[].delegate: the VirtualService (without hosts) whose http routes take this entry's place. */
export const Delegate = z.strictObject({
  name: dnsSubdomain,
  /** Absent: the root VirtualService's namespace. */
  namespace: dnsLabel.optional(),
});

export const HTTPRoute = withRule(
  z.strictObject({
    name: z.string().optional(),
    delegate: Delegate.optional(),
    match: z.array(HTTPMatchRequest).optional(),
    route: z.array(HTTPRouteDestination).min(1, { error: 'must list at least one destination' }).optional(),
    redirect: HTTPRedirect.optional(),
    directResponse: HTTPDirectResponse.optional(),
    rewrite: HTTPRewrite.optional(),
    timeout: duration({ allowZero: true }).optional(),
    retries: HTTPRetry.optional(),
    headers: Headers.optional(),
    fault: HTTPFaultInjection.optional(),
    mirror: Destination.optional(),
    mirrorPercentage: Percent.optional(),
    mirrors: z.array(HTTPMirrorPolicy).min(1, { error: 'must list at least one mirror target (or leave mirrors out)' }).optional(),
    corsPolicy: CorsPolicy.optional(),
    /** Istio's old per-route switch: WebSocket upgrades on this route (Envoy upgrade_configs). */
    websocketUpgrade: z.boolean().optional(),
  }),
  (v, report) => {
    // As Istio: a delegating entry takes its destinations from the delegate, nothing else.
    if (v['delegate'] !== undefined) {
      for (const f of ['route', 'redirect', 'directResponse'] as const) if (v[f] !== undefined) report([f], 'cannot be set with delegate: the delegate VirtualService\'s routes say where calls go');
    } else exactlyOne(['route', 'redirect', 'directResponse'])(v, report);
    mirrorRules(v, report);
    for (const kind of ['redirect', 'directResponse'] as const) {
      if (v[kind] === undefined) continue;
      for (const f of ['rewrite', 'timeout', 'retries', 'fault', 'mirror', 'mirrors', 'websocketUpgrade'] as const) {
        if (v[f] !== undefined) report([f], `has no effect on a ${kind === 'redirect' ? 'redirect' : 'direct response'} route`);
      }
    }
    // Weights are relative (Istio normalises them); a missing weight counts as 0 when there are
    // several destinations. With one destination the weight is ignored and it gets all traffic.
    const route = v['route'];
    if (Array.isArray(route) && route.length > 1) {
      const total = route.reduce<number>((sum, d) => {
        const w = isRecord(d) ? d['weight'] : undefined;
        return sum + (typeof w === 'number' && w > 0 ? w : 0);
      }, 0);
      if (total <= 0) report(['route'], 'with several destinations the weights must add up to more than 0 (they are relative)');
      // Envoy's weighted clusters take the total as a uint32.
      else if (total > 4_294_967_295) report(['route'], `the weights add up to ${total}, more than Envoy takes (4294967295)`);
    }
  },
);

export const VirtualServiceSpec = withRule(
  z.strictObject({
    /** Absent: a delegate VirtualService (Istio), used only through a root's http[].delegate. */
    hosts: z.array(host({ wildcard: true, star: true })).min(1, { error: 'must list at least one host' }).optional(),
    // One of http, tcp, tls is required (l4SpecRules), as in Istio.
    http: z.array(HTTPRoute).optional(),
    tcp: z.array(TCPRoute).optional(),
    tls: z.array(TLSRoute).optional(),
    exportTo: exportTo.optional(),
    /** Where the rule applies: gateway names and/or `mesh`; absent means `mesh` only. */
    gateways: z.array(gatewayName).optional(),
  }),
  (v, report) => {
    l4SpecRules(v, report);
    const hosts = v['hosts'];
    if (!Array.isArray(hosts)) {
      // A delegate (Istio): bound through its root only, and delegation is one level deep.
      if (v['gateways'] !== undefined) report(['gateways'], 'a delegate VirtualService (no hosts) must not set gateways: its root VirtualService\'s gateways apply');
      const http = v['http'];
      if (Array.isArray(http)) http.forEach((h, i) => { if (isRecord(h) && h['delegate'] !== undefined) report(['http', i, 'delegate'], 'a delegate VirtualService (no hosts) cannot delegate again: delegation is one level deep'); });
      return;
    }
    const gateways = v['gateways'];
    // As Istio: "*" matches every host, which sidecars cannot route by; only gateways may use it.
    const mesh = !Array.isArray(gateways) || gateways.length === 0 || gateways.includes(MESH_GATEWAY);
    if (mesh) hosts.forEach((h, i) => { if (h === '*') report(['hosts', i], 'wildcard host * is not allowed for virtual services bound to the mesh gateway'); });
    const seen = new Set<unknown>();
    hosts.forEach((h, i) => {
      if (seen.has(h)) report(['hosts', i], `duplicate host ${JSON.stringify(h)}`);
      seen.add(h);
    });
  },
);

export type VirtualServiceSpec = z.infer<typeof VirtualServiceSpec>;
export type HTTPRoute = z.infer<typeof HTTPRoute>;
export type HTTPMatchRequest = z.infer<typeof HTTPMatchRequest>;
export type HTTPRouteDestination = z.infer<typeof HTTPRouteDestination>;
export type Destination = z.infer<typeof Destination>;
export type HTTPRetry = z.infer<typeof HTTPRetry>;
export type Headers = z.infer<typeof Headers>;
export type HeaderOperations = z.infer<typeof HeaderOperations>;
export type HTTPRewrite = z.infer<typeof HTTPRewrite>;
export type RegexRewrite = z.infer<typeof RegexRewrite>;
export type HTTPFaultInjection = z.infer<typeof HTTPFaultInjection>;
export type Percent = z.infer<typeof Percent>;
export type HTTPMirrorPolicy = z.infer<typeof HTTPMirrorPolicy>;
export type HTTPRedirect = z.infer<typeof HTTPRedirect>;
export type CorsPolicy = z.infer<typeof CorsPolicy>;
export type HTTPDirectResponse = z.infer<typeof HTTPDirectResponse>;
