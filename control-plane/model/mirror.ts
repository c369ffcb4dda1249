// VirtualService http[].mirror (+ mirrorPercentage) and http[].mirrors[] -> the route's mirror
// targets. A target is resolved exactly as a route destination is (same host, port and subset
// rules and errors), for the service port of the route table being built. Istio mirrors 100% when
// no percentage is given. A target without endpoints is only a warning (routes.ts): mirrored
// responses are discarded, so the callers are not affected.
import type { ConfigObject } from '../config/types.ts';
import { resolveDestination } from './destination.ts';
import type { DestinationIn, HttpRouteIn, PercentIn } from './input.ts';
import type { FieldPath } from './issues.ts';
import type { RouteContext } from './routes.ts';
import type { MirrorTarget } from './types.ts';

function resolveTarget(
  obj: ConfigObject,
  dest: DestinationIn,
  percentage: PercentIn | undefined,
  path: FieldPath,
  tablePort: number,
  ctx: RouteContext,
): MirrorTarget | undefined {
  const d = resolveDestination(obj, dest, path, tablePort, ctx, 'mirror', 'port.number');
  if (!d) return undefined;
  const { cluster, host, port, subset } = d;
  ctx.target({ path: [...path, subset !== undefined ? 'subset' : 'host'], cluster, what: subset !== undefined ? `subset ${subset} of ${host}` : host, share: 'mirror' });
  return { cluster, host, port, ...(subset !== undefined ? { subset } : {}), percent: percentage?.value ?? 100 };
}

/** The mirror targets of one http route, [] for none, or undefined when one of them is in error. */
export function resolveMirrors(obj: ConfigObject, http: HttpRouteIn, base: FieldPath, tablePort: number, ctx: RouteContext): MirrorTarget[] | undefined {
  const wanted: Array<[DestinationIn, PercentIn | undefined, FieldPath]> = http.mirror
    ? [[http.mirror, http.mirrorPercentage, [...base, 'mirror']]]
    : (http.mirrors ?? []).map((m, j) => [m.destination, m.percentage, [...base, 'mirrors', j, 'destination']]);
  const out: MirrorTarget[] = [];
  for (const [dest, percentage, path] of wanted) {
    const t = resolveTarget(obj, dest, percentage, path, tablePort, ctx);
    if (t) out.push(t);
  }
  return out.length === wanted.length ? out : undefined;
}
