// security.istio.io AuthorizationPolicy: allow and deny lists for the workloads a policy selects.
// Istio's fields, peer identities included (principals, namespaces, serviceAccounts: checked
// against the mTLS peer certificate) and request identities (requestPrincipals, request.auth.*:
// checked against the JWT a RequestAuthentication verified). Plus one field of our own, `source.workloadSelector`, which the
// control plane resolves to workload IPs.
import { isIP } from 'node:net';
import { z } from 'zod';
import { dnsLabel, headerName, istioEnum, labels, setFields, withRule } from './common.ts';
import { jwtConditionKey } from './request-authentication.ts';
import { conditionKeyExtra, checkExtraConditionValue, isPathTemplate, pathTemplateProblem } from './authorization-extras.ts';

type Report = (path: (string | number)[], message: string) => void;

/** Why `s` is not an IP address or CIDR block (`10.0.0.1`, `10.0.0.0/16`, `fd00::/8`), or undefined. */
export function cidrProblem(s: string): string | undefined {
  const bad = `invalid IP address or CIDR block ${JSON.stringify(s)}: expected e.g. 10.1.2.3 or 10.1.0.0/16`;
  const [addr = '', len, extra] = s.split('/');
  if (extra !== undefined) return bad;
  const family = addr.includes('%') ? 0 : isIP(addr); // no IPv6 zones (fe80::1%eth0)
  if (family === 0) return bad;
  if (len === undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(len) || Number(len) > max) return `invalid prefix length in ${JSON.stringify(s)}: must be 0 to ${max}`;
  return undefined;
}

const cidr = z.string().superRefine((s, ctx) => {
  const problem = cidrProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

/** Istio's value forms: exact, `prefix*`, `*suffix`, or `*` (any value, present). */
export function wildcardProblem(s: string): string | undefined {
  if (s === '') return 'must not be empty';
  if (s === '*') return undefined;
  const inner = s.slice(s.startsWith('*') ? 1 : 0, s.endsWith('*') ? -1 : undefined);
  if (s.startsWith('*') && s.endsWith('*')) return `${JSON.stringify(s)}: a wildcard "*" may be at the start or at the end, not both`;
  if (inner.includes('*')) return `${JSON.stringify(s)}: a wildcard "*" may only be at the start (suffix match) or at the end (prefix match)`;
  return undefined;
}

const wildcardValue = z.string().superRefine((s, ctx) => {
  const problem = wildcardProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

const pathValue = z.string().superRefine((s, ctx) => {
  // Istio takes any path string (one without a leading "/" simply never matches a request path);
  // it checks the wildcard forms and, when a path uses {*} / {**}, the template's syntax.
  const problem = pathTemplateProblem(s) ?? (isPathTemplate(s) ? undefined : wildcardProblem(s));
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

/** Istio writes ports as strings ("8080"); plain numbers are accepted too. */
const portValue = z.union([z.number(), z.string()], { error: 'must be a port number' }).superRefine((p, ctx) => {
  const ok = (typeof p === 'number' || /^\d+$/.test(p)) && Number.isInteger(Number(p)) && Number(p) >= 1 && Number(p) <= 65535;
  if (!ok) ctx.addIssue({ code: 'custom', message: 'must be a port number from 1 to 65535', input: p });
});

const nonEmpty = <T extends z.ZodType>(item: T) => z.array(item).min(1, { error: 'must not be empty (leave the field out instead)' });

/** `<namespace>/<name>` or `<name>` (in the policy's namespace), as Istio writes service accounts. */
const serviceAccountValue = z.string().superRefine((s, ctx) => {
  const parts = s.split('/');
  const ok = parts.length <= 2 && parts.every((p) => /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(p));
  if (!ok) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)}: a service account is written <namespace>/<name> or <name> (no wildcards)`, input: s });
});

/** meshpilot's extension: callers named by workload labels, resolved to their current IPs. */
export const SourceWorkloadSelector = z.strictObject({
  matchLabels: labels.refine((l) => Object.keys(l).length > 0, { error: 'must have at least one label' }),
  /** Namespace of the selected workloads; defaults to the policy's namespace. */
  namespace: dnsLabel.optional(),
});

const SOURCE_FIELDS = ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'workloadSelector'] as const;

export const Source = withRule(
  z.strictObject({
    principals: nonEmpty(wildcardValue).optional(),
    notPrincipals: nonEmpty(wildcardValue).optional(),
    namespaces: nonEmpty(wildcardValue).optional(),
    notNamespaces: nonEmpty(wildcardValue).optional(),
    serviceAccounts: nonEmpty(serviceAccountValue).optional(),
    notServiceAccounts: nonEmpty(serviceAccountValue).optional(),
    trustDomains: nonEmpty(wildcardValue).optional(),
    notTrustDomains: nonEmpty(wildcardValue).optional(),
    requestPrincipals: nonEmpty(wildcardValue).optional(),
    notRequestPrincipals: nonEmpty(wildcardValue).optional(),
    ipBlocks: nonEmpty(cidr).optional(),
    notIpBlocks: nonEmpty(cidr).optional(),
    remoteIpBlocks: nonEmpty(cidr).optional(),
    notRemoteIpBlocks: nonEmpty(cidr).optional(),
    workloadSelector: SourceWorkloadSelector.optional(),
  }),
  (v, report) => {
    if (Object.keys(v).length === 0) report([], `a source must set at least one of ${SOURCE_FIELDS.join(', ')}`);
    // As Istio: a service account already names its namespace and principal.
    const accounts = setFields(v, ['serviceAccounts', 'notServiceAccounts']);
    const others = setFields(v, ['principals', 'notPrincipals', 'namespaces', 'notNamespaces']);
    if (accounts.length && others.length) report([accounts[0]!], `cannot be set with ${others.join(' or ')} in the same source (use separate sources)`);
  },
);

const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

export const Operation = withRule(
  z.strictObject({
    hosts: nonEmpty(wildcardValue).optional(),
    notHosts: nonEmpty(wildcardValue).optional(),
    ports: nonEmpty(portValue).optional(),
    notPorts: nonEmpty(portValue).optional(),
    methods: nonEmpty(wildcardValue).optional(),
    notMethods: nonEmpty(wildcardValue).optional(),
    paths: nonEmpty(pathValue).optional(),
    notPaths: nonEmpty(pathValue).optional(),
  }),
  (v, report) => {
    if (setFields(v, OPERATION_FIELDS).length === 0) report([], `an operation must set at least one of ${OPERATION_FIELDS.join(', ')}`);
  },
);

/** The `when` keys meshpilot enforces. */
export const HEADER_KEY = /^request\.headers\[(.*)\]$/;
const IP_KEYS = new Set(['source.ip', 'remote.ip']);
const PORT_KEYS = new Set(['destination.port']);
/** Peer identity keys: matched against the mTLS peer certificate's SPIFFE ID. */
export const IDENTITY_KEYS = new Set(['source.principal', 'source.namespace']);

/** Why a condition key is not enforceable here, or undefined. */
export function conditionKeyProblem(key: string): string | undefined {
  const header = HEADER_KEY.exec(key);
  if (header) return headerName.safeParse(header[1]).success || PSEUDO_HEADER.test(header[1]!) ? undefined : `invalid header name in ${JSON.stringify(key)}`;
  if (IP_KEYS.has(key) || PORT_KEYS.has(key) || IDENTITY_KEYS.has(key)) return undefined;
  if (jwtConditionKey(key)) return undefined;
  const extra = conditionKeyExtra(key);
  if (extra !== null) return extra;
  const known = 'request.headers[<name>], source.ip, remote.ip, source.principal, source.namespace, source.serviceAccount, source.trustDomain, destination.ip, destination.port, connection.sni, experimental.envoy.filters.<filter>[<key>], request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[<name>]';
  return `unknown condition key ${JSON.stringify(key)} (supported: ${known})`;
}

/** HTTP/2 pseudo-headers (`:authority`, `:method`, `:path`, `:scheme`), which Istio's header keys may name. */
const PSEUDO_HEADER = /^:[a-z]+$/;

function checkConditionValues(key: unknown, list: unknown, field: string, report: Report): void {
  if (typeof key !== 'string' || !Array.isArray(list)) return;
  list.forEach((value, i) => {
    if (typeof value !== 'string') return;
    let problem: string | undefined;
    if (IP_KEYS.has(key)) problem = cidrProblem(value);
    else if (PORT_KEYS.has(key)) problem = /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 65535 ? undefined : `${JSON.stringify(value)} is not a port number`;
    else if (HEADER_KEY.test(key) || IDENTITY_KEYS.has(key) || jwtConditionKey(key)) problem = wildcardProblem(value);
    else problem = checkExtraConditionValue(key, value);
    if (problem) report([field, i], problem);
  });
}

export const Condition = withRule(
  z.strictObject({
    key: z.string(),
    values: nonEmpty(z.string()).optional(),
    notValues: nonEmpty(z.string()).optional(),
  }),
  (v, report) => {
    const key = v['key'];
    if (typeof key === 'string') {
      const problem = conditionKeyProblem(key);
      if (problem) report(['key'], problem);
    }
    if (v['values'] === undefined && v['notValues'] === undefined) report([], 'a condition must set values or notValues');
    checkConditionValues(key, v['values'], 'values', report);
    checkConditionValues(key, v['notValues'], 'notValues', report);
  },
);

export const Rule = z.strictObject({
  from: nonEmpty(z.strictObject({ source: Source })).optional(),
  to: nonEmpty(z.strictObject({ operation: Operation })).optional(),
  when: nonEmpty(Condition).optional(),
});

export const AuthorizationPolicySpec = withRule(
  z.strictObject({
    selector: z.strictObject({ matchLabels: labels.optional() }).optional(),
    /** Default ALLOW. */
    action: istioEnum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).optional(),
    /** CUSTOM only: the mesh config's extension provider (ext_authz) that decides. */
    provider: z.strictObject({ name: z.string().optional() }).optional(),
    rules: z.array(Rule).optional(),
  }),
  // An ALLOW policy without rules means "allow nothing"; a DENY one would deny nothing, and Istio
  // refuses it rather than let it look like "deny everything". CUSTOM likewise (it would never
  // call its provider), and only CUSTOM names a provider.
  (v, report) => {
    const rules = v['rules'];
    const noRules = rules === undefined || (Array.isArray(rules) && rules.length === 0);
    if (v['action'] === 'DENY' && noRules) {
      report([rules === undefined ? 'action' : 'rules'], 'a DENY policy needs at least one rule (Istio refuses one without: it would deny nothing); to deny every request write `rules: [{}]`, or an ALLOW policy without rules (`spec: {}`)');
    }
    checkProvider(v, noRules, report);
  },
);

function checkProvider(v: Record<string, unknown>, noRules: boolean, report: Report): void {
  const provider = v['provider'] as { name?: unknown } | undefined;
  if (v['action'] === 'CUSTOM') {
    if (noRules) report([v['rules'] === undefined ? 'action' : 'rules'], 'a CUSTOM policy needs at least one rule (without one its provider is never asked); to send every request to the provider write `rules: [{}]`');
    else if (typeof provider?.name !== 'string' || provider.name === '') report(provider ? (provider.name === undefined ? ['provider'] : ['provider', 'name']) : ['action'], 'a CUSTOM policy names its extension provider: `provider: {name: <a mesh config extensionProviders name>}`');
  } else if (provider !== undefined) {
    report(['provider'], `only a CUSTOM policy names a provider (action is ${typeof v['action'] === 'string' ? v['action'] : 'ALLOW'})`);
  }
}

export type AuthorizationPolicySpec = z.infer<typeof AuthorizationPolicySpec>;
export type AuthorizationSource = z.infer<typeof Source>;
export type AuthorizationOperation = z.infer<typeof Operation>;
export type AuthorizationCondition = z.infer<typeof Condition>;
export type AuthorizationRule = z.infer<typeof Rule>;
