// Match evaluation as Envoy does it, on single matchers: path forms, case, regex full match,
// header matchers and inversion, query parameters, runtime fractions, domain precedence, and RBAC's
// three-valued logic. These pin the semantics explain relies on to agree with the data plane.
import { describe, expect, it } from 'vitest';
import { parseRequest, queryParams } from '../control-plane/explain/request.ts';
import { evaluateRouteMatch } from '../control-plane/explain/route-match.ts';
import { headerMatches } from '../control-plane/explain/string-matcher.ts';
import { selectVirtualHost } from '../control-plane/explain/virtual-host.ts';
import { policyMatches } from '../control-plane/explain/rbac.ts';
import { endpointGroups } from '../control-plane/explain/endpoints.ts';

const req = (url: string, headers: string[] = [], method = 'GET') => parseRequest(`${method} ${url}`, headers, 'envoy');
const matches = (m: Record<string, unknown>, url: string, headers: string[] = []) => evaluateRouteMatch(m, req(url, headers)).matched;

describe('path matching', () => {
  it('prefix compares the start of :path; path compares the whole path without the query string', () => {
    expect(matches({ prefix: '/foo' }, 'http://a/foobar')).toBe(true);
    expect(matches({ prefix: '/foo' }, 'http://a/fo')).toBe(false);
    expect(matches({ path: '/foo' }, 'http://a/foo?x=1')).toBe(true);
    expect(matches({ path: '/foo' }, 'http://a/foo/')).toBe(false);
    expect(matches({ path: '/foo' }, 'http://a/foobar')).toBe(false);
  });

  it('case_sensitive: false applies to prefix and path', () => {
    expect(matches({ prefix: '/API', case_sensitive: false }, 'http://a/api/x')).toBe(true);
    expect(matches({ prefix: '/API' }, 'http://a/api/x')).toBe(false);
    expect(matches({ path: '/Reviews', case_sensitive: false }, 'http://a/reviews')).toBe(true);
  });

  it('safe_regex must match the whole path (RE2), not a part of it', () => {
    const m = { safe_regex: { regex: '/api/v[0-9]+' } };
    expect(matches(m, 'http://a/api/v12')).toBe(true);
    expect(matches(m, 'http://a/api/v1/x')).toBe(false);
    expect(matches(m, 'http://a/x/api/v1')).toBe(false);
    expect(matches({ safe_regex: { regex: '(?i)/API/.*' } }, 'http://a/api/x')).toBe(true);
  });

  it('path_separated_prefix matches the prefix itself or a path segment under it', () => {
    const m = { path_separated_prefix: '/api' };
    expect(matches(m, 'http://a/api')).toBe(true);
    expect(matches(m, 'http://a/api/x?y')).toBe(true);
    expect(matches(m, 'http://a/apix')).toBe(false);
  });
});

describe('header and query matching', () => {
  it('every header condition must hold; the first failing one is reported in words', () => {
    const m = { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }, { name: 'x-env', string_match: { prefix: 'stag' } }] };
    const r = evaluateRouteMatch(m, req('http://a/', ['end-user: jason', 'x-env: prod']));
    expect(r.matched).toBe(false);
    expect(r.failed).toBe('header x-env starting with "stag"; the request has "prod"');
    expect(evaluateRouteMatch(m, req('http://a/', ['End-User: jason', 'x-env: staging'])).matched).toBe(true);
  });

  it('invert_match: a value that does not match matches; a missing header does in gRPC but not in Envoy', () => {
    const h = { name: 'x-debug', string_match: { exact: '1' }, invert_match: true };
    expect(headerMatches(h, { 'x-debug': '0' }).ok).toBe(true);
    expect(headerMatches(h, { 'x-debug': '1' }).ok).toBe(false);
    // Envoy (HeaderUtility::matchHeaders): a missing header with invert_match matches only present_match.
    expect(headerMatches(h, {}, 'envoy').ok).toBe(false);
    expect(headerMatches({ ...h, treat_missing_header_as_empty: true }, {}, 'envoy').ok).toBe(true);
    // grpc-js-xds: the missing header fails the matcher, and the inversion makes it match.
    expect(headerMatches(h, {}, 'grpc').ok).toBe(true);
    expect(headerMatches({ name: 'x-a', present_match: false }, {}, 'envoy').ok).toBe(true);
    expect(headerMatches({ name: 'x-a', string_match: { exact: '' } }, { 'x-a': '' }).ok).toBe(true);
    // Istio's withoutHeaders: { x-debug: {} } -> present_match inverted: matches only when absent.
    const absent = { name: 'x-debug', present_match: true, invert_match: true };
    expect(headerMatches(absent, {}).ok).toBe(true);
    expect(headerMatches(absent, { 'x-debug': '' }).ok).toBe(false);
  });

  it('suffix, contains and ignore_case; a regex on a cookie header', () => {
    expect(headerMatches({ name: 'h', string_match: { suffix: 'ZZ', ignore_case: true } }, { h: 'abczz' }).ok).toBe(true);
    expect(headerMatches({ name: 'h', string_match: { contains: 'b' } }, { h: 'abc' }).ok).toBe(true);
    const cookie = { name: 'cookie', string_match: { safe_regex: { regex: '^(.*?;)?(user=jason)(;.*)?$' } } };
    expect(headerMatches(cookie, parseRequest('GET http://a/', ['cookie: theme=dark;user=jason;lang=en'], 'envoy').headers).ok).toBe(true);
    expect(headerMatches(cookie, { cookie: 'user=jasonx' }).ok).toBe(false);
  });

  it(':method is a header like the others; repeated headers are joined with commas, cookies with "; "', () => {
    const r = req('http://a/', ['x-a: 1', 'x-a: 2', 'cookie: a=1', 'cookie: b=2'], 'POST');
    expect(r.headers['x-a']).toBe('1,2');
    expect(r.headers.cookie).toBe('a=1; b=2');
    expect(matches({ prefix: '/', headers: [{ name: ':method', string_match: { exact: 'GET' } }] }, 'http://a/')).toBe(true);
    expect(evaluateRouteMatch({ prefix: '/', headers: [{ name: ':method', string_match: { exact: 'GET' } }] }, r).matched).toBe(false);
  });

  it('gRPC clients match call metadata, which has no pseudo-headers', () => {
    const m = { prefix: '/', headers: [{ name: ':authority', string_match: { prefix: 'reviews' } }] };
    expect(evaluateRouteMatch(m, parseRequest('xds:///reviews:9080/a.B/C', [], 'envoy')).matched).toBe(true);
    expect(evaluateRouteMatch(m, parseRequest('xds:///reviews:9080/a.B/C', [], 'grpc')).matched).toBe(false);
  });

  it('query parameters: the first value, present_match, and no match when absent', () => {
    // Not percent-decoded (Envoy's parseQueryString).
    expect(queryParams('/x?a=1&a=2&b&c=%20z')).toEqual(new Map([['a', '1'], ['b', ''], ['c', '%20z']]));
    const m = { prefix: '/', query_parameters: [{ name: 'mode', string_match: { exact: 'test' } }] };
    expect(matches(m, 'http://a/x?mode=test')).toBe(true);
    expect(matches(m, 'http://a/x?mode=prod&mode=test')).toBe(false);
    expect(matches(m, 'http://a/x')).toBe(false);
    expect(matches({ prefix: '/', query_parameters: [{ name: 'b', present_match: true }] }, 'http://a/?b')).toBe(true);
    expect(matches({ prefix: '/', query_parameters: [{ name: 'b', present_match: false }] }, 'http://a/?b')).toBe(false);
    expect(matches({ prefix: '/', query_parameters: [{ name: 'b', present_match: false }] }, 'http://a/?c')).toBe(true);
  });

  it('runtime_fraction makes a route take only a share of the requests it matches', () => {
    const r = evaluateRouteMatch({ prefix: '/', runtime_fraction: { default_value: { numerator: 25, denominator: 'HUNDRED' } } }, req('http://a/'));
    expect(r).toMatchObject({ matched: true, fraction: 0.25 });
  });
});

describe('virtual host selection', () => {
  const vh = (name: string, ...domains: string[]) => ({ name, domains });
  const pick = (authority: string, ...vhosts: Array<{ name: string; domains: string[] }>) => selectVirtualHost(vhosts, authority)?.vhost.name;

  it('exact beats suffix wildcard beats prefix wildcard beats *', () => {
    const all = [vh('any', '*'), vh('prefix', 'api.*'), vh('suffix', '*.example.com'), vh('exact', 'api.example.com')];
    expect(pick('api.example.com', ...all)).toBe('exact');
    expect(pick('web.example.com', ...all)).toBe('suffix');
    expect(pick('api.other.org', ...all)).toBe('prefix');
    expect(pick('nothing.org', ...all)).toBe('any');
  });

  it('the longest wildcard wins; a wildcard never matches the empty string; case does not matter', () => {
    expect(pick('a.b.example.com', vh('short', '*.example.com'), vh('long', '*.b.example.com'))).toBe('long');
    expect(pick('-bar.foo.com', vh('w', '*-bar.foo.com'))).toBeUndefined();
    expect(pick('baz-bar.foo.com', vh('w', '*-bar.foo.com'))).toBe('w');
    expect(pick('Reviews:9080', vh('r', 'reviews:9080'))).toBe('r');
  });

  it('the port is part of the authority: reviews:9080 needs a domain with the port', () => {
    expect(pick('reviews:9080', vh('r', 'reviews'))).toBeUndefined();
    expect(pick('reviews', vh('r', 'reviews'))).toBe('r');
    expect(parseRequest('GET http://reviews/', [], 'envoy').authority).toBe('reviews');
    expect(parseRequest('xds:///reviews:9080/a.B/C', [], 'grpc')).toMatchObject({ authority: 'reviews:9080', method: 'POST', path: '/a.B/C' });
  });
});

describe('RBAC evaluation', () => {
  const ctx = (sourceIp?: string) => ({ request: req('http://a/admin', [], 'POST'), ...(sourceIp ? { sourceIp } : {}), destinationPort: 9080 });
  const policy = { permissions: [{ and_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'POST' } } }, { url_path: { path: { prefix: '/admin' } } }] } }], principals: [{ not_id: { direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } } }] };

  it('a policy matches when a permission and a principal match', () => {
    expect(policyMatches(policy, ctx('192.168.1.1'))).toBe(true);
    expect(policyMatches(policy, ctx('10.1.2.3'))).toBe(false);
  });

  it("is unknown when it depends on the caller's IP and that is not known", () => {
    expect(policyMatches(policy, ctx())).toBe('unknown');
    // ... but not when the permissions already fail.
    expect(policyMatches({ ...policy, permissions: [{ destination_port: 1 }] }, ctx())).toBe(false);
  });
});

describe('endpoints', () => {
  const ep = (address: string) => ({ endpoint: { address: { socket_address: { address, port_value: 80 } } } });
  it('the lowest priority with endpoints takes all traffic, shared by locality weight; the caller\'s locality is marked', () => {
    const cla = {
      cluster_name: 'c',
      endpoints: [
        { locality: { region: 'us-east', zone: 'a' }, lb_endpoints: [ep('10.0.0.1'), ep('10.0.0.2')], load_balancing_weight: 3, priority: 0 },
        { locality: { region: 'us-east', zone: 'b' }, lb_endpoints: [ep('10.0.0.3')], load_balancing_weight: 1 },
        { locality: { region: 'us-west', zone: 'c' }, lb_endpoints: [ep('10.0.0.4')], load_balancing_weight: 1, priority: 1 },
      ],
    };
    const groups = endpointGroups(cla, { region: 'us-east', zone: 'b', subzone: '' });
    expect(groups.map((g) => [g.priority, g.locality, g.share, g.sameLocalityAsCaller])).toEqual([
      [0, 'us-east/a', 0.75, false],
      [0, 'us-east/b', 0.25, true],
      [1, 'us-west/c', 0, false],
    ]);
    // Priority 0 without endpoints: priority 1 takes everything.
    const failover = endpointGroups({ endpoints: [{ ...cla.endpoints[0], lb_endpoints: [] }, cla.endpoints[2]] }, { region: '', zone: '', subzone: '' });
    expect(failover.map((g) => [g.priority, g.share])).toEqual([[0, 0], [1, 1]]);
    // An Envoy cluster without locality_weighted_lb_config balances over hosts: 2 of 3 in zone a.
    expect(endpointGroups(cla, { region: '', zone: '', subzone: '' }, false).map((g) => Math.round(g.share * 100))).toEqual([67, 33, 0]);
  });
});
