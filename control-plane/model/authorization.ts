// AuthorizationPolicy objects -> resolved allow/deny policies. Everything the translator needs is
// decided here: CIDR blocks normalised to their network address, ports as numbers, Istio's value
// wildcards parsed, and meshpilot's `source.workloadSelector` resolved to the current IPs of the
// selected workloads (ServiceEntry endpoints and WorkloadEntries). The model is rebuilt whenever a
// rule file changes, so those IPs follow the endpoints.
import { isIP } from 'node:net';
import { compareText } from './compare.ts';
import { HEADER_KEY } from '../config/schemas/authorization-policy.ts';
import { jwtConditionKey } from '../config/schemas/request-authentication.ts';
import { type ConfigObject, isKind } from '../config/types.ts';
import type { AuthorizationConditionIn, AuthorizationOperationIn, AuthorizationPolicyIn, AuthorizationSourceIn } from './input.ts';
import { type FieldPath, type IssueList, originOf } from './issues.ts';
import { endpointPort, isHttpProtocol, labelsMatch } from './services.ts';
import type { Origin, Service } from './types.ts';
import { type MeshSettings, spiffeId } from './mesh-identity.ts';
import { isPathTemplate, parseExperimentalKey, pathTemplateRegex, envoyUriTemplate } from '../config/schemas/authorization-extras.ts';
import { resolveExtAuthz, type ResolvedExtAuthz } from './extension-providers.ts';

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** A CIDR block with the address already reduced to the network address (what gRPC requires). */
export interface Cidr { address: string; prefixLen: number }

/** Istio's value forms: `v` exact, `v*` prefix, `*v` suffix, `*` any (present). */
export type AuthzValue = { kind: 'exact' | 'prefix' | 'suffix'; value: string } | { kind: 'any' };

/**
 * A match on the caller's mTLS identity: its certificate's URI SAN, a full SPIFFE ID
 * (`spiffe://cluster.local/ns/default/sa/productpage`). A caller without a certificate has none
 * (matches nothing, so a `not` matches it).
 */
export type IdentityMatch = { kind: 'exact' | 'prefix' | 'suffix' | 'regex'; value: string } | { kind: 'any' };

export interface AuthzSource {
  /** principals (`cluster.local/ns/x/sa/y`, Istio's value forms), as SPIFFE ID matches. */
  principals?: IdentityMatch[];
  notPrincipals?: IdentityMatch[];
  /** namespaces, as matches on the SPIFFE ID's `/ns/<namespace>/` part. */
  namespaces?: IdentityMatch[];
  notNamespaces?: IdentityMatch[];
  /** serviceAccounts (`ns/sa` or `sa`), as exact SPIFFE IDs in the mesh's trust domain. */
  serviceAccounts?: IdentityMatch[];
  notServiceAccounts?: IdentityMatch[];
  /** trustDomains, as matches on the SPIFFE ID's trust domain. */
  trustDomains?: IdentityMatch[];
  notTrustDomains?: IdentityMatch[];
  ipBlocks?: Cidr[];
  notIpBlocks?: Cidr[];
  remoteIpBlocks?: Cidr[];
  notRemoteIpBlocks?: Cidr[];
  /** `workloadSelector` resolved to the selected workloads' IPs; empty = matches no caller. */
  workloadIps?: Cidr[];
  /** requestPrincipals (`<iss>/<sub>`, Istio's value forms), matched against the verified JWT. */
  requestPrincipals?: AuthzValue[];
  notRequestPrincipals?: AuthzValue[];
}

/** A path: Istio's value forms, or a template (`{*}`, `{**}`): Envoy's URI template and the same as a regex. */
export type PathValue = AuthzValue | { kind: 'template'; template: string; regex: string };

export interface AuthzOperation {
  /** Raw Istio host patterns; the translator decides how ports in :authority are matched. */
  hosts?: string[];
  notHosts?: string[];
  ports?: number[];
  notPorts?: number[];
  methods?: AuthzValue[];
  notMethods?: AuthzValue[];
  paths?: PathValue[];
  notPaths?: PathValue[];
}

export type AuthzCondition =
  | { kind: 'header'; name: string; values?: AuthzValue[]; notValues?: AuthzValue[] }
  | { kind: 'sourceIp' | 'remoteIp'; values?: Cidr[]; notValues?: Cidr[] }
  | { kind: 'destinationPort'; values?: number[]; notValues?: number[] }
  | { kind: 'principal' | 'namespace'; values?: IdentityMatch[]; notValues?: IdentityMatch[] }
  /** request.auth.principal (`<iss>/<sub>`) and claims (`aud`, `azp`, request.auth.claims[...]) of the verified JWT. */
  | { kind: 'requestPrincipal'; values?: AuthzValue[]; notValues?: AuthzValue[] }
  | { kind: 'jwtClaim'; claim: string[]; values?: AuthzValue[]; notValues?: AuthzValue[] }
  | { kind: 'destinationIp'; values?: Cidr[]; notValues?: Cidr[] }
  | { kind: 'sni'; values?: AuthzValue[]; notValues?: AuthzValue[] }
  /** experimental.envoy.filters.<filter>[<key>]: a value in the list another filter left in its dynamic metadata. */
  | { kind: 'filterMetadata'; filter: string; path: string[]; values?: AuthzValue[]; notValues?: AuthzValue[] };

/** A rule matches when a source, an operation and every condition match (empty lists match all). */
export interface AuthzRule {
  from: AuthzSource[];
  to: AuthzOperation[];
  when: AuthzCondition[];
}

export interface AuthorizationPolicy {
  name: string;
  namespace: string;
  /** Workload labels in `namespace`; absent = every workload of the namespace. */
  selector?: Record<string, string>;
  action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  /** `istio.io/dry-run: "true"`: evaluated and counted as shadow rules, never enforced. */
  dryRun: boolean;
  /** An ALLOW policy without rules allows nothing (deny all); a DENY policy always has rules (the schema refuses one without). */
  rules: AuthzRule[];
  /** Some rule matches on the caller's mTLS identity (principals, namespaces, serviceAccounts). */
  usesIdentity: boolean;
  origin: Origin;
  /** CUSTOM: the extension provider named, resolved; or why it cannot be used (the policy then fails closed). */
  custom?: { provider: string } & ({ extAuthz: ResolvedExtAuthz } | { problem: string });
}

// ---- values ----------------------------------------------------------------------------------

export function parseValue(s: string): AuthzValue {
  if (s === '*') return { kind: 'any' };
  if (s.startsWith('*')) return { kind: 'suffix', value: s.slice(1) };
  if (s.endsWith('*')) return { kind: 'prefix', value: s.slice(0, -1) };
  return { kind: 'exact', value: s };
}

function ipv6Words(address: string): number[] {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, dotted.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const words = (part: string) => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const front = words(head);
  const back = tail === undefined ? [] : words(tail);
  return [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
}

function formatIpv6(words: number[]): string {
  // Compress the longest run of two or more zero words (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** `10.1.2.3/16` -> { address: '10.1.0.0', prefixLen: 16 }; a plain address is a /32 (or /128). */
export function parseCidr(text: string): Cidr {
  const [addr = '', len] = text.split('/');
  if (isIP(addr) === 4) {
    const prefixLen = len === undefined ? 32 : Number(len);
    const n = addr.split('.').reduce((acc, b) => acc * 256 + Number(b), 0);
    const mask = prefixLen === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefixLen);
    const net = Number((BigInt(n) & BigInt(mask)));
    return { address: [24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.'), prefixLen };
  }
  const prefixLen = len === undefined ? 128 : Number(len);
  const words = ipv6Words(addr).map((w, i) => {
    const keep = Math.max(0, Math.min(16, prefixLen - i * 16));
    return keep === 0 ? 0 : w & (0xffff - (2 ** (16 - keep) - 1));
  });
  return { address: formatIpv6(words), prefixLen };
}

const RE2_SPECIAL = /[\\^$.*+?()[\]{}|]/g;
const quote = (t: string) => t.replace(RE2_SPECIAL, '\\$&');

/** Istio's principal forms over `<trust-domain>/ns/<ns>/sa/<sa>`, as SPIFFE ID matches. */
export function principalMatch(text: string): IdentityMatch {
  const v = parseValue(text);
  if (v.kind === 'any') return { kind: 'any' };
  return v.kind === 'suffix' ? v : { kind: v.kind, value: `spiffe://${v.value}` };
}

/** A namespace (Istio's value forms) as a match on the SPIFFE ID's `/ns/<namespace>/` part. */
export function namespaceMatch(text: string): IdentityMatch {
  const v = parseValue(text);
  if (v.kind === 'any') return { kind: 'any' };
  const ns = v.kind === 'exact' ? quote(v.value) : v.kind === 'prefix' ? `${quote(v.value)}[^/]*` : `[^/]*${quote(v.value)}`;
  return { kind: 'regex', value: `spiffe://[^/]+/ns/${ns}/sa/[^/]+` };
}

/** A trust domain (Istio's value forms) as a match on the SPIFFE ID's authority. */
export function trustDomainMatch(text: string): IdentityMatch {
  const v = parseValue(text);
  if (v.kind === 'any') return { kind: 'any' };
  if (v.kind === 'exact') return { kind: 'prefix', value: `spiffe://${v.value}/` };
  const td = v.kind === 'prefix' ? `${quote(v.value)}[^/]*` : `[^/]*${quote(v.value)}`;
  return { kind: 'regex', value: `spiffe://${td}/.*` };
}

/** `ns/sa` or `sa` (the policy's namespace) as the exact SPIFFE ID. */
export function serviceAccountMatch(text: string, namespace: string, trustDomain: string): IdentityMatch {
  const [ns, sa] = text.includes('/') ? text.split('/') : [namespace, text];
  return { kind: 'exact', value: spiffeId(trustDomain, ns!, sa!) };
}

function pathValue(text: string): PathValue {
  return isPathTemplate(text) ? { kind: 'template', template: envoyUriTemplate(text), regex: pathTemplateRegex(text) } : parseValue(text);
}

const cidrs = (list: readonly string[] | undefined) => list?.map(parseCidr);
const values = (list: readonly string[] | undefined) => list?.map(parseValue);
const ports = (list: ReadonlyArray<string | number> | undefined) => list?.map(Number);

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---- workloads -------------------------------------------------------------------------------

interface Workload { namespace: string; address: string; labels: Record<string, string> }

/** Every workload the mesh knows of: ServiceEntry endpoints and WorkloadEntries. */
function knownWorkloads(objects: readonly ConfigObject[], services: readonly Service[], issues: IssueList): Workload[] {
  const out: Workload[] = [];
  for (const s of services) for (const ep of s.endpoints) out.push({ namespace: s.namespace, address: ep.address, labels: ep.labels });
  for (const o of objects) {
    if (!isKind(o, 'WorkloadEntry') || issues.rejected.has(o.key)) continue;
    const we = o.spec;
    out.push({ namespace: o.namespace, address: we.address ?? '', labels: { ...o.labels, ...(we.labels ?? {}) } });
  }
  return out.filter((w) => isIP(w.address) !== 0);
}

function workloadIps(workloads: readonly Workload[], namespace: string, selector: Record<string, string>): Cidr[] {
  const ips = new Set(workloads.filter((w) => w.namespace === namespace && labelsMatch(selector, w.labels)).map((w) => w.address));
  return [...ips].sort().map(parseCidr);
}

// ---- building --------------------------------------------------------------------------------

function buildCondition(c: AuthorizationConditionIn, namespace: string, mesh: MeshSettings): AuthzCondition {
  // Newer Istio's identity keys, as the source fields of the same names: matches on the SPIFFE ID.
  if (c.key === 'source.serviceAccount') {
    const sa = (t: string) => serviceAccountMatch(t, namespace, mesh.trustDomain);
    return defined({ kind: 'principal' as const, values: c.values?.map(sa), notValues: c.notValues?.map(sa) });
  }
  if (c.key === 'source.trustDomain') return defined({ kind: 'principal' as const, values: c.values?.map(trustDomainMatch), notValues: c.notValues?.map(trustDomainMatch) });
  if (c.key === 'source.principal') return defined({ kind: 'principal' as const, values: c.values?.map(principalMatch), notValues: c.notValues?.map(principalMatch) });
  if (c.key === 'source.namespace') return defined({ kind: 'namespace' as const, values: c.values?.map(namespaceMatch), notValues: c.notValues?.map(namespaceMatch) });
  const jwt = jwtConditionKey(c.key);
  if (jwt?.kind === 'principal') return defined({ kind: 'requestPrincipal' as const, values: values(c.values), notValues: values(c.notValues) });
  if (jwt?.kind === 'claim') return defined({ kind: 'jwtClaim' as const, claim: jwt.path, values: values(c.values), notValues: values(c.notValues) });
  const header = HEADER_KEY.exec(c.key);
  if (header) return defined({ kind: 'header' as const, name: header[1]!.toLowerCase(), values: values(c.values), notValues: values(c.notValues) });
  if (c.key === 'destination.ip') return defined({ kind: 'destinationIp' as const, values: cidrs(c.values), notValues: cidrs(c.notValues) });
  if (c.key === 'connection.sni') return defined({ kind: 'sni' as const, values: values(c.values), notValues: values(c.notValues) });
  const meta = parseExperimentalKey(c.key);
  if (meta) return defined({ kind: 'filterMetadata' as const, ...meta, values: values(c.values), notValues: values(c.notValues) });
  if (c.key === 'destination.port') return defined({ kind: 'destinationPort' as const, values: ports(c.values), notValues: ports(c.notValues) });
  return defined({ kind: c.key === 'remote.ip' ? ('remoteIp' as const) : ('sourceIp' as const), values: cidrs(c.values), notValues: cidrs(c.notValues) });
}

function buildOperation(o: AuthorizationOperationIn): AuthzOperation {
  return defined({
    hosts: o.hosts,
    notHosts: o.notHosts,
    ports: ports(o.ports),
    notPorts: ports(o.notPorts),
    methods: values(o.methods),
    notMethods: values(o.notMethods),
    paths: o.paths?.map(pathValue),
    notPaths: o.notPaths?.map(pathValue),
  });
}

export function buildAuthorizationPolicies(objects: readonly ConfigObject[], services: readonly Service[], issues: IssueList, mesh: MeshSettings, mtlsModes?: (namespace: string, labels: Record<string, string>, port: number) => string): AuthorizationPolicy[] {
  // Listing every workload costs milliseconds on a large mesh; only policies need it.
  const workloads = objects.some((o) => o.kind === 'AuthorizationPolicy') ? knownWorkloads(objects, services, issues) : [];
  const out: AuthorizationPolicy[] = [];
  for (const obj of objects) {
    if (!isKind(obj, 'AuthorizationPolicy')) continue;
    const spec = obj.spec;
    const action = spec.action ?? 'ALLOW';

    const dryRunText = obj.annotations[DRY_RUN_ANNOTATION];
    if (dryRunText !== undefined && dryRunText !== 'true' && dryRunText !== 'false') {
      issues.error(obj, ['metadata', 'annotations', DRY_RUN_ANNOTATION], `must be "true" or "false" (got ${JSON.stringify(dryRunText)})`);
      continue;
    }
    const dryRun = dryRunText === 'true';
    if (dryRunText !== undefined && action === 'CUSTOM') {
      // As Istio: a CUSTOM policy's effect is the provider's, which has no dry-run mode.
      issues.error(obj, ['metadata', 'annotations', DRY_RUN_ANNOTATION], 'is not supported on a CUSTOM policy (the external authorizer decides; it has no dry run)');
      continue;
    }

    const rules = (spec.rules ?? []).map((r, i): AuthzRule => ({
      from: (r.from ?? []).map(({ source }, j) => buildSource(obj, source, ['spec', 'rules', i, 'from', j, 'source'], workloads, issues, mesh)),
      to: (r.to ?? []).map(({ operation }) => buildOperation(operation)),
      when: (r.when ?? []).map((c) => buildCondition(c, obj.namespace, mesh)),
    }));
    warnForeignTrustDomains(obj, spec, mesh, issues);
    warnCoverage(obj, spec, dryRun, services, issues);
    const usesIdentity = rules.some((r) => r.from.some(sourceUsesIdentity) || r.when.some((c) => c.kind === 'principal' || c.kind === 'namespace'));
    if (usesIdentity && mtlsModes) warnNoMtls(obj, spec, services, issues, mtlsModes);

    const custom = action === 'CUSTOM' ? customOf(obj, spec.provider?.name ?? '', services, mesh, issues) : undefined;
    const selector = spec.selector?.matchLabels;
    out.push({
      name: obj.name,
      namespace: obj.namespace,
      ...(selector && Object.keys(selector).length > 0 ? { selector: { ...selector } } : {}),
      action,
      dryRun,
      rules,
      usesIdentity,
      origin: originOf(obj),
      ...(custom ? { custom } : {}),
    });
  }
  const kept = out.filter((p) => !issues.rejected.has(`AuthorizationPolicy/${p.namespace}/${p.name}`)).sort((a, b) => compareText(a.origin.key, b.origin.key));
  warnMultipleProviders(objects, kept, workloads, issues);
  return kept;
}

/**
 * Envoy's ext_authz filter asks one authorizer: CUSTOM policies naming different providers for one
 * workload all deny there instead (translate/rbac-audit-custom.ts), as Istio does. Said per policy,
 * for the known workloads both select.
 */
function warnMultipleProviders(objects: readonly ConfigObject[], policies: readonly AuthorizationPolicy[], workloads: readonly Workload[], issues: IssueList): void {
  const custom = policies.filter((p) => p.custom && 'extAuthz' in p.custom);
  if (custom.length < 2) return;
  const clash = new Map<AuthorizationPolicy, Set<string>>();
  for (const w of workloads) {
    const mine = custom.filter((p) => p.namespace === w.namespace && labelsMatch(p.selector ?? {}, w.labels));
    const providers = new Set(mine.map((p) => p.custom!.provider));
    if (providers.size < 2) continue;
    for (const p of mine) clash.set(p, new Set([...(clash.get(p) ?? []), `${w.address} (${[...providers].sort().join(', ')})`]));
  }
  for (const [p, where] of clash) {
    const obj = objects.find((o) => o.key === p.origin.key);
    if (obj) issues.warn(obj, ['spec', 'provider', 'name'], `workloads selected by CUSTOM policies with different providers: ${[...where].sort().join('; ')}; one workload can use one external authorizer, so there every CUSTOM policy's rules deny instead (as Istio does)`);
  }
}

/** A CUSTOM policy's provider; one that cannot be used is a warning: Istio accepts the policy and its rules then deny. */
function customOf(obj: ConfigObject, provider: string, services: readonly Service[], mesh: MeshSettings, issues: IssueList): NonNullable<AuthorizationPolicy['custom']> {
  const r = resolveExtAuthz(provider, mesh.extensionProviders, services);
  if ('problem' in r) {
    issues.warn(obj, ['spec', 'provider', 'name'], `${r.problem}: requests this policy's rules match are denied (403) until it is fixed, as Istio does`);
    return { provider, problem: r.problem };
  }
  return { provider, extAuthz: r };
}

const sourceUsesIdentity = (s: AuthzSource) => ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains'].some((k) => s[k as keyof AuthzSource] !== undefined);

function buildSource(obj: ConfigObject, s: AuthorizationSourceIn, path: FieldPath, workloads: readonly Workload[], issues: IssueList, mesh: MeshSettings): AuthzSource {
  const sa = (t: string) => serviceAccountMatch(t, obj.namespace, mesh.trustDomain);
  const out: AuthzSource = defined({
    principals: s.principals?.map(principalMatch),
    notPrincipals: s.notPrincipals?.map(principalMatch),
    namespaces: s.namespaces?.map(namespaceMatch),
    notNamespaces: s.notNamespaces?.map(namespaceMatch),
    serviceAccounts: s.serviceAccounts?.map(sa),
    notServiceAccounts: s.notServiceAccounts?.map(sa),
    trustDomains: s.trustDomains?.map(trustDomainMatch),
    notTrustDomains: s.notTrustDomains?.map(trustDomainMatch),
    ipBlocks: cidrs(s.ipBlocks),
    notIpBlocks: cidrs(s.notIpBlocks),
    remoteIpBlocks: cidrs(s.remoteIpBlocks),
    notRemoteIpBlocks: cidrs(s.notRemoteIpBlocks),
    requestPrincipals: values(s.requestPrincipals),
    notRequestPrincipals: values(s.notRequestPrincipals),
  });
  if (s.workloadSelector) {
    const ns = s.workloadSelector.namespace ?? obj.namespace;
    out.workloadIps = workloadIps(workloads, ns, s.workloadSelector.matchLabels);
    if (out.workloadIps.length === 0) {
      issues.warn(obj, [...path, 'workloadSelector'], `selects no workload with an IP address in namespace ${ns} (ServiceEntry endpoints, WorkloadEntries): this source matches no caller until one exists`);
    }
  }
  return out;
}

/**
 * The trust-domain part of an Istio principal (`<trust-domain>/ns/<ns>/sa/<sa>`) when it is a
 * literal: not for `*`, `*suffix`, or a prefix that ends before the first `/`.
 */
export function principalTrustDomain(text: string): string | undefined {
  if (text.startsWith('*')) return undefined;
  const slash = text.indexOf('/');
  if (slash <= 0) return undefined;
  const td = text.slice(0, slash);
  return td.includes('*') ? undefined : td;
}

/**
 * A principal (or trust domain) in a trust domain the mesh does not have matches no caller: every
 * workload certificate the mesh CA issues is in the mesh's trust domain. Usually a policy copied
 * from another mesh, or a control plane started without its --trust-domain.
 */
function warnForeignTrustDomains(obj: ConfigObject, spec: AuthorizationPolicyIn, mesh: MeshSettings, issues: IssueList): void {
  const check = (list: readonly string[] | undefined, path: FieldPath, what: 'principal' | 'trustDomain') => {
    list?.forEach((text, i) => {
      const td = what === 'principal' ? principalTrustDomain(text) : text.includes('*') ? undefined : text;
      if (td === undefined || td === mesh.trustDomain) return;
      const named = what === 'principal' ? `principal "${text}" is in trust domain ${td}` : `trust domain ${td}`;
      issues.warn(obj, [...path, i], `${named}, but the mesh's trust domain is ${mesh.trustDomain}: no workload certificate of this mesh has it, so it matches no caller (meshpilot has no trust domain aliases; check the principal, or the control plane's --trust-domain)`);
    });
  };
  (spec.rules ?? []).forEach((r, i) => {
    (r.from ?? []).forEach(({ source }, j) => {
      const at = ['spec', 'rules', i, 'from', j, 'source'];
      check(source.principals, [...at, 'principals'], 'principal');
      check(source.notPrincipals, [...at, 'notPrincipals'], 'principal');
      check(source.trustDomains, [...at, 'trustDomains'], 'trustDomain');
      check(source.notTrustDomains, [...at, 'notTrustDomains'], 'trustDomain');
    });
    (r.when ?? []).forEach((c, k) => {
      if (c.key !== 'source.principal') return;
      check(c.values, ['spec', 'rules', i, 'when', k, 'values'], 'principal');
      check(c.notValues, ['spec', 'rules', i, 'when', k, 'notValues'], 'principal');
    });
  });
}

/**
 * Says what a policy will not do for the workloads it selects (judged by the labels of the
 * service endpoints in its namespace): TCP ports are not covered, and proxyless gRPC servers have
 * no shadow rules.
 */
function warnCoverage(obj: ConfigObject, spec: AuthorizationPolicyIn, dryRun: boolean, services: readonly Service[], issues: IssueList): void {
  const selector = spec.selector?.matchLabels ?? {};
  const tcp = new Set<string>();
  let grpc = false;
  for (const svc of services) {
    if (svc.namespace !== obj.namespace || !svc.endpoints.some((ep) => labelsMatch(selector, ep.labels))) continue;
    for (const p of svc.ports) {
      if (!isHttpProtocol(p.protocol)) tcp.add(`${svc.host}:${p.number} (${p.protocol})`);
      if (p.protocol === 'GRPC') grpc = true;
    }
  }
  const where = spec.selector ? ['spec', 'selector'] : ['spec'];
  if (tcp.size > 0) {
    issues.warn(obj, where, `not enforced on non-HTTP ports of the selected workloads: ${[...tcp].sort().join(', ')} (meshpilot enforces authorization on HTTP, HTTP2 and GRPC ports only)`);
  }
  if (dryRun && grpc) {
    issues.warn(obj, ['metadata', 'annotations', DRY_RUN_ANNOTATION], 'proxyless gRPC servers have no shadow rules: this dry-run policy is left out for them (Envoy sidecars evaluate it)');
  }
  if (grpc) warnGrpcLimits(obj, spec, issues);
}

/** Condition keys grpc-js-xds cannot evaluate (no SNI, no other filters' metadata). */
export const GRPC_UNSUPPORTED_KEY = (key: string) => key === 'connection.sni' || key.startsWith('experimental.');

/** What proxyless gRPC servers cannot do, and the fail-closed stand-in they get instead. */
function warnGrpcLimits(obj: ConfigObject, spec: AuthorizationPolicyIn, issues: IssueList): void {
  const action = spec.action ?? 'ALLOW';
  if (action === 'AUDIT') issues.warn(obj, ['spec', 'action'], 'proxyless gRPC servers have no audit logging: this AUDIT policy is left out for them (Envoy sidecars log)');
  if (action === 'CUSTOM') issues.warn(obj, ['spec', 'action'], 'proxyless gRPC servers cannot call an external authorizer: there, requests this policy\'s rules match are denied (PERMISSION_DENIED) instead');
  (spec.rules ?? []).forEach((r, i) => (r.when ?? []).forEach((c, k) => {
    if (!GRPC_UNSUPPORTED_KEY(c.key)) return;
    const effect = action === 'ALLOW' ? 'an ALLOW rule with it matches nothing there' : action === 'AUDIT' ? 'it is not audited there' : 'the rule applies there as if the condition held';
    issues.warn(obj, ['spec', 'rules', i, 'when', k, 'key'], `proxyless gRPC servers cannot evaluate ${c.key}: ${effect} (fail closed)`);
  }));
}

/**
 * Identity rules need mTLS: a caller on a plaintext connection has no identity, so an ALLOW rule
 * on principals refuses it and a DENY rule lets it through. Said for the selected workloads'
 * ports where mTLS is not in force: DISABLE, and PERMISSIVE on GRPC ports (a proxyless gRPC
 * server takes plaintext only there; an Envoy sidecar still takes plaintext callers too).
 */
function warnNoMtls(obj: ConfigObject, spec: AuthorizationPolicyIn, services: readonly Service[], issues: IssueList, mtlsModes: (namespace: string, labels: Record<string, string>, port: number) => string): void {
  const selector = spec.selector?.matchLabels ?? {};
  const off = new Set<string>();
  for (const svc of services) {
    if (svc.namespace !== obj.namespace) continue;
    for (const ep of svc.endpoints) {
      if (!labelsMatch(selector, ep.labels)) continue;
      for (const sp of svc.ports) {
        if (!isHttpProtocol(sp.protocol)) continue;
        const mode = mtlsModes(svc.namespace, ep.labels, endpointPort(ep, sp));
        if (mode === 'DISABLE') off.add(`${svc.host}:${sp.number} (DISABLE)`);
        else if (mode === 'PERMISSIVE' && sp.protocol === 'GRPC') off.add(`${svc.host}:${sp.number} (PERMISSIVE: plaintext on proxyless gRPC servers)`);
      }
    }
  }
  if (off.size === 0) return;
  issues.warn(obj, ['spec', 'rules'], `matches on caller identities, but mTLS is not in force on ${[...off].sort().join(', ')}: callers there have no identity (an ALLOW rule on identities refuses them, a DENY rule lets them through); set PeerAuthentication STRICT`);
}
