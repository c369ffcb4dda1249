// One destination (host, optional port and subset) resolved to its upstream cluster, with the
// errors a route destination and a mirror target share: unknown host, unknown port, an ambiguous
// port, an unknown subset. Endpoints play no part: see routes.ts.
import type { ConfigObject } from '../config/types.ts';
import { clusterName, resolveHost } from './hosts.ts';
import type { DestinationIn } from './input.ts';
import type { FieldPath } from './issues.ts';
import type { RouteContext } from './routes.ts';
import type { Service } from './types.ts';

/** For checking a route's references when it belongs to no port's table. */
export const ANY_PORT = -1;

export interface ResolvedDestination {
  host: string;
  svc: Service;
  port: number;
  subset?: string;
  cluster: string;
}

/**
 * `role` names the destination in messages ("destination", "mirror"); `portField` is how the
 * message tells the user to name a port.
 */
export function resolveDestination(
  obj: ConfigObject,
  dest: DestinationIn,
  path: FieldPath,
  tablePort: number,
  ctx: RouteContext,
  role: string,
  portField: string,
): ResolvedDestination | undefined {
  const host = resolveHost(dest.host, obj.namespace);
  const svc = ctx.service(host);
  if (!svc) {
    ctx.issues.error(obj, [...path, 'host'], `${role} host ${host} is not a known service (declare it with a ServiceEntry)`);
    return undefined;
  }
  let port = dest.port?.number;
  if (port !== undefined && !svc.ports.some((p) => p.number === port)) {
    ctx.issues.error(obj, [...path, 'port', 'number'], `service ${host} has no port ${port}`);
    return undefined;
  }
  if (port === undefined) {
    if (svc.ports.length === 1) port = svc.ports[0].number;
    else if (svc.ports.some((p) => p.number === tablePort)) port = tablePort;
    else if (tablePort === ANY_PORT) port = svc.ports[0].number;
    else {
      ctx.issues.error(obj, [...path, 'port'], `service ${host} has several ports; name one with ${portField}`);
      return undefined;
    }
  }
  const subset = dest.subset;
  if (subset !== undefined && !ctx.hasSubset(host, subset)) {
    ctx.issues.error(obj, [...path, 'subset'], `subset ${subset} is not defined by any DestinationRule for ${host}`);
    return undefined;
  }
  const cluster = clusterName('outbound', port, subset, host);
  return { host, svc, port, ...(subset !== undefined ? { subset } : {}), cluster };
}
