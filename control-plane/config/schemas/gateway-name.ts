// Gateway names in a VirtualService (`gateways`, `match[].gateways`): one checker for http and tcp/tls.
import { z } from 'zod';
import { isDnsLabel, isDnsSubdomain } from './common.ts';

export const MESH_GATEWAY = 'mesh';

/**
 * Why a VirtualService's gateway name is invalid, or undefined. As Istio: `mesh`, `name` (the
 * VirtualService's namespace), `ns/name`, or the legacy `name.ns.svc.cluster.local`.
 */
export function gatewayNameProblem(s: string): string | undefined {
  if (s === MESH_GATEWAY) return undefined;
  const slash = s.indexOf('/');
  if (slash < 0) return isDnsSubdomain(s) ? undefined : `invalid gateway name ${JSON.stringify(s)}: expected mesh, <name> or <namespace>/<name>`;
  const [ns, name] = [s.slice(0, slash), s.slice(slash + 1)];
  if (ns === '' || name === '') return 'config namespace and gateway name cannot be empty';
  if (!isDnsLabel(ns)) return `invalid value for namespace: ${JSON.stringify(ns)}`;
  if (!isDnsLabel(name)) return `invalid value for gateway name: ${JSON.stringify(name)}`;
  return undefined;
}

export const gatewayName = z.string().superRefine((s, ctx) => {
  const problem = gatewayNameProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

