// The concrete request explain evaluates: `METHOD URL` plus `name: value` headers, turned into
// the header map a proxy matches on (pseudo-headers :method, :path, :authority, :scheme included).
// Envoy sidecars see the Host an HTTP client sends (`reviews:9080`, no port for 80/443); proxyless
// gRPC clients dial `xds:///host:port` and match the method path `/pkg.Service/Method`.
import type { ClientKind } from '../translate/proxy.ts';

export class ExplainInputError extends Error {}

/** `k=v,k2=v2` (the --labels flag and the admin API's labels text). */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new ExplainInputError(`labels: expected k=v[,k=v], got '${part}'`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export interface HttpRequest {
  /** Which data plane evaluates it (they differ on a few matcher details, see string-matcher.ts). */
  plane: ClientKind;
  method: string;
  scheme: string;
  /** Host without port, as written. */
  host: string;
  port: number;
  /** What the proxy matches virtual host domains against (`reviews:9080`, or `reviews` for port 80). */
  authority: string;
  /** `:path` with the query string, without a fragment. */
  path: string;
  /** Lower-case names; repeated headers joined with ',' (cookies with '; '), as Envoy sees them. */
  headers: Record<string, string>;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

/** `GET http://reviews:9080/x?y=1`, `http://reviews:9080/x` (GET; POST for gRPC), `xds:///reviews:9080/pkg.Svc/Call`. */
export function parseRequest(line: string, headerLines: readonly string[], kind: ClientKind): HttpRequest {
  const parts = line.trim().split(/\s+/);
  if (parts.length === 0 || parts.length > 2 || !parts[parts.length - 1]) throw new ExplainInputError(`request: expected 'METHOD URL' (e.g. 'GET http://reviews:9080/'), got '${line}'`);
  const url = parts[parts.length - 1]!;
  const method = (parts.length === 2 ? parts[0]! : kind === 'grpc' ? 'POST' : 'GET').toUpperCase();
  const m = /^([a-z][a-z0-9+.-]*):\/\/\/?([^/?#]+)([^#]*)/i.exec(url);
  if (!m) throw new ExplainInputError(`request: '${url}' is not a URL like http://reviews:9080/path or xds:///reviews:9080/pkg.Service/Method`);
  const scheme = m[1]!.toLowerCase();
  // Case kept: a gRPC client asks for the Listener named exactly as dialled (domains compare case-insensitively).
  const authorityText = m[2]!;
  let path = m[3] || '/';
  if (!path.startsWith('/')) path = `/${path}`;
  const hp = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authorityText);
  if (!hp) throw new ExplainInputError(`request: cannot read host and port from '${authorityText}'`);
  const host = hp[1]!;
  const port = hp[2] ? Number(hp[2]) : DEFAULT_PORTS[scheme];
  if (port === undefined) throw new ExplainInputError(`request: '${url}' needs a port (no default port for ${scheme}:)`);
  // gRPC puts the dial target (host:port as dialled) in :authority; HTTP clients leave out a default port.
  const authority = hp[2] ? authorityText : kind === 'grpc' ? `${host}:${port}` : host;
  const headers: Record<string, string> = {};
  for (const h of headerLines) {
    const i = h.indexOf(':', h.startsWith(':') ? 1 : 0);
    if (i <= 0) throw new ExplainInputError(`header '${h}': expected 'name: value'`);
    const name = h.slice(0, i).trim().toLowerCase();
    const value = h.slice(i + 1).trim();
    if (name.startsWith(':')) throw new ExplainInputError(`header '${h}': pseudo-headers come from the request line`);
    headers[name] = name in headers ? `${headers[name]}${name === 'cookie' ? '; ' : ','}${value}` : value;
  }
  if (kind === 'grpc' && !('content-type' in headers)) headers['content-type'] = 'application/grpc';
  headers[':method'] = method;
  headers[':path'] = path;
  headers[':authority'] = authority;
  headers[':scheme'] = scheme === 'xds' ? 'http' : scheme;
  return { plane: kind, method, scheme, host, port, authority, path, headers };
}

/** The path without query string (and fragment), as Envoy's exact/regex path matchers see it. */
export function pathOnly(path: string): string {
  const q = path.search(/[?#]/);
  return q < 0 ? path : path.slice(0, q);
}

/**
 * Query parameters, first value per name, as Envoy's route matcher reads them
 * (QueryParamsMulti::parseQueryString: split on & and =, values NOT percent-decoded; a name
 * without '=' has the value "").
 */
export function queryParams(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0) return out;
  for (const pair of path.slice(q + 1).split('&')) {
    if (!pair) continue;
    const i = pair.indexOf('=');
    const name = i < 0 ? pair : pair.slice(0, i);
    if (!out.has(name)) out.set(name, i < 0 ? '' : pair.slice(i + 1));
  }
  return out;
}

/**
 * The headers a data plane's route and fault header matchers see. gRPC clients match on call
 * metadata, which has no pseudo-headers (:method, :path, :authority); Envoy sees them all.
 * (gRPC servers' RBAC does add :method, :authority and :path.)
 */
export function routingHeaders(req: HttpRequest): Record<string, string> {
  if (req.plane !== 'grpc') return req.headers;
  return Object.fromEntries(Object.entries(req.headers).filter(([k]) => !k.startsWith(':')));
}
