// One Istio HTTPMatchRequest -> one Envoy RouteMatch.
import type { RouteMatch } from '../model/types.ts';
import type { Json } from '../json.ts';
import { stringMatcher } from './string-match.ts';

function pathSpecifier(m: RouteMatch): Json {
  if (!m.uri) return { prefix: '/' };
  switch (m.uri.kind) {
    case 'exact':
      return { path: m.uri.value };
    case 'prefix':
      return { prefix: m.uri.value };
    case 'regex':
      return { safe_regex: { regex: m.ignoreUriCase ? `(?i)${m.uri.value}` : m.uri.value } };
  }
}

export function envoyRouteMatch(m: RouteMatch): Json {
  const headers: Json[] = m.headers.map((h) => ({
    name: h.name,
    ...(h.match ? { string_match: stringMatcher(h.match) } : { present_match: true }),
    ...(h.invert ? { invert_match: true } : {}),
  }));
  if (m.method) headers.unshift({ name: ':method', string_match: stringMatcher(m.method) });
  const query = m.queryParams.map((q) => ({ name: q.name, ...(q.match ? { string_match: stringMatcher(q.match) } : { present_match: true }) }));
  return {
    ...pathSpecifier(m),
    ...(m.ignoreUriCase && m.uri && m.uri.kind !== 'regex' ? { case_sensitive: false } : {}),
    ...(headers.length ? { headers } : {}),
    ...(query.length ? { query_parameters: query } : {}),
  };
}
