// What a route adds to forwarding: mirrors (with their share), the timeout, the retry policy, and
// a note on consistent hashing; each with the rule field it came from when the rule wrote it.
import type { RuleIndex } from './origins.ts';
import { fraction } from './route-match.ts';
import type { Json } from '../json.ts';
import type { Explanation } from './types.ts';

export interface RouteExtrasContext { index: RuleIndex; route: Json; vhost: Json; action: Json; grpc: boolean }

export function routeExtras({ index, route, vhost, action, grpc }: RouteExtrasContext): Pick<Explanation, 'mirrors' | 'timeout' | 'retry'> {
  const extras: Pick<Explanation, 'mirrors' | 'timeout' | 'retry'> = { mirrors: [] };
  const vhostName = String(vhost.name);
  const routeName = String(route.name ?? '');
  const mirrorRule = index.routeField(vhostName, routeName, 'mirrors') ?? index.routeField(vhostName, routeName, 'mirror');
  for (const m of (action.request_mirror_policies as Json[] | undefined) ?? []) {
    extras.mirrors.push({ cluster: String(m.cluster), share: m.runtime_fraction ? fraction((m.runtime_fraction as Json).default_value as Json) : 1, ...(mirrorRule ? { rule: mirrorRule } : {}) });
  }
  const timeoutRule = index.routeField(vhostName, routeName, 'timeout');
  if (grpc) {
    const msd = (action.max_stream_duration as Json | undefined)?.max_stream_duration;
    if (msd) extras.timeout = { value: String(msd), note: 'max_stream_duration (gRPC applies it as the call deadline)', ...(timeoutRule ? { rule: timeoutRule } : {}) };
  } else {
    const t = action.timeout === undefined ? '15s' : String(action.timeout);
    extras.timeout = { value: t, note: t === '0s' ? 'none: 0s disables the timeout' : action.timeout === undefined ? "Envoy's default" : 'route timeout', ...(timeoutRule ? { rule: timeoutRule } : {}) };
  }
  const rp = (action.retry_policy ?? vhost.retry_policy) as Json | undefined;
  if (rp) {
    const retryRule = index.routeField(vhostName, routeName, 'retries');
    extras.retry = {
      attempts: Number(rp.num_retries ?? 1),
      on: String(rp.retry_on ?? ''),
      ...(rp.per_try_timeout ? { perTryTimeout: String(rp.per_try_timeout) } : {}),
      ...(retryRule ? { rule: retryRule } : {}),
      note: retryRule ? 'from the route' : grpc ? 'retry policy' : "Istio's default: the route names none",
    };
  }
  return extras;
}

export function hashNote(action: Json): string[] {
  const hash = (action.hash_policy as Json[] | undefined)?.[0];
  if (hash) {
    const key = hash.header ? `header ${String((hash.header as Json).header_name)}` : hash.cookie ? `cookie ${String((hash.cookie as Json).name)}` : hash.query_parameter ? `query parameter ${String((hash.query_parameter as Json).name)}` : hash.connection_properties ? 'source IP' : 'a request property';
    return [`consistent hashing on ${key}: each key sticks to one endpoint; the endpoint shares above hold over many keys, not for one request`];
  }
  return [];
}
