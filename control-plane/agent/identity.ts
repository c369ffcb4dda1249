// Who the workload is: its SPIFFE ID, from flags or (in a pod) the downward-API environment.
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

export interface Identity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

// Kubernetes names: the same restrictions keep the ID a valid URI path without escaping.
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function spiffeId(id: Identity): string {
  for (const [what, v] of [['trust domain', id.trustDomain], ['namespace', id.namespace], ['service account', id.serviceAccount]] as const) {
    if (!NAME.test(v)) throw new Error(`${what} "${v}" is not a DNS-style name (lower case letters, digits, - and .)`);
  }
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}
