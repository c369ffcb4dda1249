// VirtualService `redirect` -> Envoy RedirectAction (sidecars only; gRPC has no redirects).
import type { RouteAction } from '../model/types.ts';
import type { Json } from '../json.ts';

const RESPONSE_CODE: Record<number, string> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

export function redirectAction(a: Extract<RouteAction, { kind: 'redirect' }>): Json {
  return {
    ...(a.scheme ? { scheme_redirect: a.scheme } : {}),
    ...(a.authority ? { host_redirect: a.authority } : {}),
    ...(a.port ? { port_redirect: a.port } : {}),
    ...(a.uri ? { path_redirect: a.uri } : {}),
    response_code: RESPONSE_CODE[a.code],
  };
}
