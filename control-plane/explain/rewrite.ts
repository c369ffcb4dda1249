// The request as the destination sees it: the route's path and host rewrites and its request
// header changes (Envoy's default append_action appends to an existing header), applied before the
// callee's inbound filters evaluate it.
import { RE2JS } from 're2js';
import type { HttpRequest } from './request.ts';
import type { Json } from '../json.ts';

/** The request as the upstream sees it after the route's rewrites and header changes. */
export function upstreamRequest(req: HttpRequest, route: Json, action: Json): HttpRequest {
  const headers = { ...req.headers };
  let path = req.path;
  if (typeof action.prefix_rewrite === 'string' && typeof (route.match as Json).prefix === 'string') {
    path = action.prefix_rewrite + path.slice(String((route.match as Json).prefix).length);
  }
  const rr = action.regex_rewrite as Json | undefined;
  if (rr) {
    const q = path.search(/[?]/);
    const bare = q < 0 ? path : path.slice(0, q);
    path = RE2JS.compile(String((rr.pattern as Json).regex)).matcher(bare).replaceAll(String(rr.substitution)) + (q < 0 ? '' : path.slice(q));
  }
  let authority = req.authority;
  if (typeof action.host_rewrite_literal === 'string') authority = action.host_rewrite_literal;
  for (const name of (route.request_headers_to_remove as string[] | undefined) ?? []) delete headers[name.toLowerCase()];
  for (const h of (route.request_headers_to_add as Json[] | undefined) ?? []) {
    const hv = h.header as Json;
    const name = String(hv.key).toLowerCase();
    headers[name] = (h.append_action ?? 'APPEND_IF_EXISTS_OR_ADD') === 'APPEND_IF_EXISTS_OR_ADD' && headers[name] !== undefined ? `${headers[name]},${String(hv.value)}` : String(hv.value);
  }
  headers[':path'] = path;
  headers[':authority'] = authority;
  return { ...req, path, authority, headers };
}
