// Workload identities as SPIFFE IDs: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// The one format every part of meshpilot (CA, agent, policy translation) uses for a workload.

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

export interface Identity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

// Kubernetes names: namespaces are DNS labels, service accounts DNS subdomains. Anything else in
// an ID (a slash, a percent escape, upper case) would let two spellings name one workload.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// SPIFFE trust domains: lower-case letters, digits, '.', '-', '_'.
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

/** Why `id` is not a valid identity, or undefined when it is. */
export function identityProblem(id: Identity): string | undefined {
  if (!TRUST_DOMAIN.test(id.trustDomain)) return `trust domain "${id.trustDomain}" is not lower-case letters, digits, ".", "-" or "_"`;
  if (!DNS_LABEL.test(id.namespace)) return `namespace "${id.namespace}" is not a DNS label`;
  if (!DNS_SUBDOMAIN.test(id.serviceAccount)) return `service account "${id.serviceAccount}" is not a DNS subdomain`;
  return undefined;
}

export function checkTrustDomain(trustDomain: string): string {
  if (!TRUST_DOMAIN.test(trustDomain)) throw new Error(`trust domain "${trustDomain}" is not lower-case letters, digits, ".", "-" or "_"`);
  return trustDomain;
}

/** The SPIFFE ID of an identity; throws on names Kubernetes would not accept. */
export function formatSpiffeId(id: Identity): string {
  const problem = identityProblem(id);
  if (problem) throw new Error(problem);
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses `spiffe://<td>/ns/<ns>/sa/<sa>` exactly (no query, fragment, port or extra segments). */
export function parseSpiffeId(uri: string): Identity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  const id = { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
  return identityProblem(id) ? undefined : id;
}

/** Kubernetes' user name for a service account token: system:serviceaccount:<ns>:<sa>. */
export function identityFromServiceAccountUser(username: string, trustDomain: string): Identity | undefined {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  if (!m) return undefined;
  const id = { trustDomain, namespace: m[1]!, serviceAccount: m[2]! };
  return identityProblem(id) ? undefined : id;
}
