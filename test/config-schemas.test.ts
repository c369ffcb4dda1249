// The rules of each kind's schema that go beyond field types: durations, retry conditions,
// one-of groups, weights, ServiceEntry resolution rules, and "not supported by meshpilot".
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { parseDuration, re2Problem } from '../control-plane/config/schemas/index.ts';
import { retryOnProblem } from '../control-plane/config/schemas/virtual-service.ts';
import { formatError } from '../control-plane/config/types.ts';

function doc(kind: string, spec: string, name = 'x'): string {
  return `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata: {name: ${name}}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
}

/** `path: message` of every error (in position order), for compact assertions. */
function problems(text: string): string[] {
  return parseConfigText('t.yaml', text).errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message));
}

function accepts(text: string): void {
  const r = parseConfigText('t.yaml', text);
  expect(r.errors.map(formatError)).toEqual([]);
  expect(r.objects).toHaveLength(1);
}

const route = 'route: [{destination: {host: a}}]';

describe('durations', () => {
  it.each([
    ['1s', 1000],
    ['0.5s', 500],
    ['100ms', 100],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1500us', undefined],
    ['2000us', 2],
    ['0.25s', 250],
    ['1.5h', 5_400_000],
    ['0s', 0],
  ])('%s -> %s ms', (text, ms) => {
    const r = parseDuration(text);
    if (ms === undefined) expect(r).toHaveProperty('error');
    else expect(r).toEqual({ ms });
  });

  it.each(['', '10', '1', '-1s', '1 s', 's', '1d', '1.s', '1S', '10s ', '1s1', '1e3ms', '.5s'])('rejects %j', (text) => {
    expect(parseDuration(text)).toHaveProperty('error');
  });

  it('requires > 0 where Envoy does, and allows 0s where it means "disabled"', () => {
    expect(problems(doc('DestinationRule', 'host: a\ntrafficPolicy: {connectionPool: {tcp: {connectTimeout: 0s}}}'))).toEqual([
      'spec.trafficPolicy.connectionPool.tcp.connectTimeout: duration must be at least 1ms',
    ]);
    accepts(doc('VirtualService', `hosts: [a]\nhttp: [{timeout: 0s, ${route}}]`));
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{timeout: 10, ${route}}]`))).toEqual([
      'spec.http[0].timeout: expected a duration string such as "10s" or "500ms"',
    ]);
  });
});

describe('regexes are checked as RE2', () => {
  it('accepts RE2 and rejects what only JavaScript or PCRE accepts', () => {
    expect(re2Problem('^/api/v[0-9]+(/.*)?$')).toBeUndefined();
    expect(re2Problem('(?P<v>\\d+)')).toBeUndefined();
    expect(re2Problem('(a)\\1')).toMatch(/invalid escape/);
    expect(re2Problem('(?<=x)y')).toMatch(/RE2/);
    expect(re2Problem('')).toBe('regex must not be empty');
  });
});

describe('VirtualService', () => {
  it('checks retryOn tokens against the Envoy and gRPC retry conditions', () => {
    expect(retryOnProblem('5xx,gateway-error,reset,connect-failure,retriable-4xx,refused-stream,retriable-status-codes,cancelled,deadline-exceeded,internal,resource-exhausted,unavailable,503')).toBeUndefined();
    expect(retryOnProblem('5xx, connect-failure')).toBeUndefined();
    expect(retryOnProblem('5xx,,reset')).toMatch(/empty/);
    expect(retryOnProblem('5xx,600')).toMatch(/600 is not an HTTP status code/);
    expect(retryOnProblem('timeout')).toMatch(/unknown retry condition "timeout"/);
  });

  it('needs exactly one of route, redirect and directResponse', () => {
    expect(problems(doc('VirtualService', 'hosts: [a]\nhttp: [{name: r}]'))).toEqual(['spec.http[0]: exactly one of route, redirect, directResponse must be set']);
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{${route}, redirect: {uri: /b}}]`))).toEqual([
      'spec.http[0]: only one of route, redirect, directResponse may be set (found route and redirect)',
    ]);
    accepts(doc('VirtualService', 'hosts: [a]\nhttp: [{directResponse: {status: 503, body: {string: down}}}]'));
    accepts(doc('VirtualService', `hosts: [a]\nhttp: [{${route}, websocketUpgrade: true}]`));
    accepts(doc('VirtualService', 'hosts: [a]\nhttp: [{directResponse: {status: 200, body: {bytes: Z29uZQ==}}}]'));
    expect(problems(doc('VirtualService', 'hosts: [a]\nhttp: [{directResponse: {status: 199, body: {string: a, bytes: YQ==}}, timeout: 1s}]'))).toEqual([
      'spec.http[0].directResponse.status: must be an HTTP status code from 200 to 599',
      'spec.http[0].directResponse.body: only one of string, bytes may be set (found string and bytes)',
      'spec.http[0].timeout: has no effect on a direct response route',
    ]);
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{directResponse: {status: 200, body: {string: ${'x'.repeat(4097)}}}}]`))).toEqual([
      'spec.http[0].directResponse.body: the body is 4097 bytes; Envoy takes at most 4096 in a direct response',
    ]);
    accepts(doc('VirtualService', 'hosts: [a]\nhttp: [{redirect: {uri: /b, redirectCode: 308}}]'));
    expect(problems(doc('VirtualService', 'hosts: [a]\nhttp: [{redirect: {redirectCode: 301}}]'))).toEqual([
      'spec.http[0].redirect: redirect must set uri, authority, port or scheme',
    ]);
  });

  it('treats weights as relative, but several destinations need a total above 0', () => {
    accepts(doc('VirtualService', 'hosts: [a]\nhttp: [{route: [{destination: {host: a}, weight: 1}, {destination: {host: b}, weight: 3}]}]'));
    accepts(doc('VirtualService', 'hosts: [a]\nhttp: [{route: [{destination: {host: a}, weight: 0}]}]'));
    expect(problems(doc('VirtualService', 'hosts: [a]\nhttp: [{route: [{destination: {host: a}}, {destination: {host: b}}]}]'))).toEqual([
      'spec.http[0].route: with several destinations the weights must add up to more than 0 (they are relative)',
    ]);
    // Istio takes any int32 weight (totals other than 100 are relative; the model warns).
    accepts(doc('VirtualService', 'hosts: [a]\nhttp: [{route: [{destination: {host: a}, weight: 550}, {destination: {host: b}, weight: 500}]}]'));
    expect(problems(doc('VirtualService', 'hosts: [a]\nhttp: [{route: [{destination: {host: a}, weight: -1}]}]'))).toEqual([
      'spec.http[0].route[0].weight: must be an integer from 0 to 2147483647',
    ]);
    expect(problems(doc('VirtualService', 'hosts: [a]\nhttp: [{route: [{destination: {host: a}, weight: 2147483647}, {destination: {host: b}, weight: 2147483647}, {destination: {host: c}, weight: 2}]}]'))).toEqual([
      'spec.http[0].route: the weights add up to 4294967296, more than Envoy takes (4294967295)',
    ]);
  });

  it('lets an empty header match mean "present", but not elsewhere; no prefix on query parameters', () => {
    accepts(doc('VirtualService', `hosts: [a]\nhttp: [{match: [{headers: {x-a: {}}, withoutHeaders: {x-b: {}}, queryParams: {q: {exact: ""}}}], ${route}}]`));
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{match: [{queryParams: {q: {prefix: a}}, uri: {}}], ${route}}]`))).toEqual([
      'spec.http[0].match[0].queryParams.q.prefix: prefix matching is not supported for query parameters (as in Istio); use regex',
      'spec.http[0].match[0].uri: exactly one of exact, prefix, regex must be set',
    ]);
  });

  it('does not ignore ignoreUriCase where it would have no effect', () => {
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{match: [{uri: {regex: "/a.*"}, ignoreUriCase: true}], ${route}}]`))).toEqual([
      'spec.http[0].match[0].ignoreUriCase: has no effect on a regex uri match (as in Istio); use (?i) in the regex',
    ]);
  });

  it('keeps rewrite.uri and uriRegexRewrite apart, and protects Host and pseudo-headers', () => {
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{rewrite: {uri: /b, uriRegexRewrite: {match: "^/a", rewrite: /b}}, ${route}}]`))).toEqual([
      'spec.http[0].rewrite.uriRegexRewrite: uri and uriRegexRewrite cannot both be set',
    ]);
    // Setting :authority or Host rewrites the authority (as in Istio); adding or removing them cannot be done.
    accepts(doc('VirtualService', `hosts: [a]\nhttp: [{headers: {request: {set: {":authority": b}}}, ${route}}]`));
    accepts(doc('VirtualService', `hosts: [a]\nhttp: [{headers: {request: {set: {Host: b}}}, ${route}}]`));
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{headers: {request: {add: {Host: b}, remove: [":path"]}, response: {set: {":authority": c}}}, ${route}}]`))).toEqual([
      'spec.http[0].headers.request.add.Host: the Host header cannot be added or removed; set it (or :authority), or use rewrite.authority',
      'spec.http[0].headers.request.remove[0]: invalid HTTP header name',
      'spec.http[0].headers.response.set[":authority"]: a response has no authority: only request headers can set :authority or Host',
    ]);
  });

  it('checks header values as Envoy formats them (%% is a literal %, %NAME% a substitution), per route and per destination', () => {
    accepts(doc('VirtualService', `hosts: [a]\nhttp: [{route: [{destination: {host: a}, headers: {response: {set: {x-a: "100%%"}, add: {x-b: "hello %HOSTNAME%", x-c: "%REQ(x-id):10%"}}}}]}]`));
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{route: [{destination: {host: a}, headers: {response: {add: {x-a: "abcd%oijasodifj"}}}}]}]`))).toEqual([
      'spec.http[0].route[0].headers.response.add["x-a"]: unescaped % at offset 4: write %% for a literal %, or %NAME% for an Envoy substitution such as %HOSTNAME%',
    ]);
  });

  it('names unsupported top-level Istio fields', () => {
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{mirrorPercent: 5, ${route}}]`))).toEqual([
      'spec.http[0].mirrorPercent: field not supported by meshpilot (did you mean "mirrorPercentage"?)',
    ]);
  });
});

describe('VirtualService corsPolicy', () => {
  it('takes Istio\'s fields, and checks methods, header names, origins and whole-second maxAge', () => {
    accepts(doc('VirtualService', `hosts: [a]\nhttp: [{${route}, corsPolicy: {allowOrigins: [{exact: "https://a.example"}, {regex: ".*"}], allowMethods: [GET, POST], allowHeaders: ["*"], exposeHeaders: [x-a], maxAge: 2s, allowCredentials: true, unmatchedPreflights: IGNORE}}]`));
    accepts(doc('VirtualService', `hosts: [a]\nhttp: [{${route}, corsPolicy: {allowOrigin: ["https://a.example"]}}]`));
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{${route}, corsPolicy: {allowOrigins: [{prefix: ""}], allowMethods: [PUTT], allowHeaders: ["a b"], maxAge: 1.5s}}]`))).toEqual([
      'spec.http[0].corsPolicy.allowOrigins[0].prefix: must not be empty',
      'spec.http[0].corsPolicy.allowMethods[0]: must be an HTTP method: GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH',
      'spec.http[0].corsPolicy.allowHeaders[0]: invalid HTTP header name',
      'spec.http[0].corsPolicy.maxAge: must be whole seconds (browsers cache preflights by the second; as in Istio)',
    ]);
    expect(problems(doc('VirtualService', `hosts: [a]\nhttp: [{${route}, corsPolicy: {allowOrigin: [x], allowOrigins: [{exact: y}]}}]`))).toEqual([
      'spec.http[0].corsPolicy.allowOrigin: allowOrigin and allowOrigins cannot both be set; list every origin in allowOrigins',
    ]);
  });
});

describe('DestinationRule', () => {
  it('needs exactly one load-balancing choice and says which Istio values it does not support', () => {
    accepts(doc('DestinationRule', 'host: a\ntrafficPolicy: {loadBalancer: {simple: LEAST_CONN}}'));
    expect(problems(doc('DestinationRule', 'host: a\ntrafficPolicy: {loadBalancer: {simple: UNSPECIFIED}}'))).toEqual([
      'spec.trafficPolicy.loadBalancer.simple: "UNSPECIFIED" is not supported by meshpilot (supported: ROUND_ROBIN, LEAST_REQUEST, LEAST_CONN, RANDOM, PASSTHROUGH)',
    ]);
    expect(problems(doc('DestinationRule', 'host: a\ntrafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-u, useSourceIp: true}}}'))).toEqual([
      'spec.trafficPolicy.loadBalancer.consistentHash: only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName may be set (found httpHeaderName and useSourceIp)',
    ]);
    expect(problems(doc('DestinationRule', 'host: a\ntrafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65536}}}}'))).toEqual([
      'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: must be a prime number (Envoy requires it), e.g. 65537',
    ]);
  });

  it('wants unique subset names and portLevelSettings ports', () => {
    expect(problems(doc('DestinationRule', 'host: a\nsubsets: [{name: v1}, {name: v1}]\ntrafficPolicy: {portLevelSettings: [{port: {number: 80}, tls: {mode: DISABLE}}, {port: {number: 80}, tls: {mode: DISABLE}}]}'))).toEqual([
      'spec.subsets[1].name: duplicate subset name "v1" (also at index 0)',
      'spec.trafficPolicy.portLevelSettings[1].port: duplicate port 80 (also at index 0)',
    ]);
  });

  it('rejects limits of 0 (unset in Istio) and local-origin settings that would do nothing', () => {
    expect(problems(doc('DestinationRule', 'host: a\ntrafficPolicy:\n  connectionPool: {http: {http2MaxRequests: 0}}\n  outlierDetection: {consecutiveLocalOriginFailures: 2, minHealthPercent: 101}'))).toEqual([
      'spec.trafficPolicy.connectionPool.http.http2MaxRequests: must be an integer from 1 to 2147483647 (leave the field out for the default)',
      'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: has effect only when splitExternalLocalOriginErrors is true',
      'spec.trafficPolicy.outlierDetection.minHealthPercent: must be a percentage from 0 to 100',
    ]);
  });
});

describe('ServiceEntry and WorkloadEntry', () => {
  const ports = 'ports: [{number: 80, name: http, protocol: HTTP}]';

  it('takes every Istio resolution, NONE by default, with Istio\'s rules for each', () => {
    accepts(doc('ServiceEntry', `hosts: [a.com]\n${ports}`));
    accepts(doc('ServiceEntry', `hosts: [a.com]\n${ports}\nresolution: DNS_ROUND_ROBIN\nendpoints: [{address: b.example.com}]`));
    accepts(doc('ServiceEntry', `hosts: ["*.a.com"]\n${ports}\nresolution: DYNAMIC_DNS`));
    expect(problems(doc('ServiceEntry', `hosts: [a.com]\n${ports}\nendpoints: [{address: 10.0.0.1}]`))).toEqual([
      'spec.endpoints: no endpoints may be given with resolution NONE (the default): connections go to the address the caller asked for',
    ]);
    expect(problems(doc('ServiceEntry', `hosts: [a.com]\n${ports}\nresolution: DNS_ROUND_ROBIN\nendpoints: [{address: b.example.com}, {address: c.example.com}]`))).toEqual([
      'spec.endpoints: DNS_ROUND_ROBIN takes at most one endpoint (Envoy resolves one name and balances over its addresses)',
    ]);
    expect(problems(doc('ServiceEntry', 'hosts: ["*.a.com"]\nports: [{number: 80, name: http, protocol: HTTP}, {number: 81, name: tcp, protocol: TCP}]\nresolution: DYNAMIC_DNS\nendpoints: [{address: b.example.com}]'))).toEqual([
      'spec.ports[1].protocol: DYNAMIC_DNS needs an HTTP, HTTP2 or GRPC port (the host comes from the request)',
      'spec.endpoints: no endpoints may be given with resolution DYNAMIC_DNS: connections go to the address the caller asked for',
    ]);
  });

  it('reads protocols case-insensitively and takes addresses (IPs, CIDR blocks except with DNS)', () => {
    accepts(doc('ServiceEntry', 'hosts: [a.com]\nports: [{number: 80, name: http, protocol: http}, {number: 27017, name: mongo, protocol: Mongo}, {number: 81, name: plain}, {number: 82, name: empty, protocol: ""}]\naddresses: [10.0.0.1, 10.1.0.0/16, "2001:db8::/32"]'));
    expect(problems(doc('ServiceEntry', 'hosts: [a.com]\nports: [{number: 80, name: http, protocol: udp}]\naddresses: [10.0.0.1/33, a.com]\nresolution: DNS'))).toEqual([
      'spec.ports[0].protocol: "UDP" is not supported by meshpilot (supported: HTTP, HTTP2, GRPC, TCP, HTTPS, TLS, MONGO, MYSQL, REDIS)',
      'spec.addresses[0]: must be an IP address or a CIDR block (e.g. 10.0.0.0/16)',
      'spec.addresses[1]: must be an IP address or a CIDR block (e.g. 10.0.0.0/16)',
    ]);
    expect(problems(doc('ServiceEntry', `hosts: [a.com]\n${ports}\naddresses: [10.0.0.0/8]\nresolution: DNS`))).toEqual([
      'spec.addresses[0]: CIDR blocks are allowed only with resolution NONE or STATIC (got "10.0.0.0/8" with DNS)',
    ]);
  });

  it('wants IP endpoints with STATIC, allows host names with DNS', () => {
    expect(problems(doc('ServiceEntry', `hosts: [a.com]\n${ports}\nresolution: STATIC\nendpoints: [{address: 10.1.1.1}, {address: a.example.com}]`))).toEqual([
      'spec.endpoints[1].address: with STATIC resolution an endpoint address must be an IP address (got "a.example.com")',
    ]);
    accepts(doc('ServiceEntry', `hosts: [a.com]\n${ports}\nresolution: DNS\nendpoints: [{address: 10.1.1.1}, {address: a.example.com, ports: {http: 8080}}]`));
    expect(problems(doc('ServiceEntry', `hosts: ["*.a.com"]\n${ports}\nresolution: DNS`))).toEqual([
      'spec.hosts[0]: a wildcard host cannot be resolved with DNS unless endpoints are given',
    ]);
  });

  it('wants unique port numbers and names, known endpoint port names, and not both endpoints and workloadSelector', () => {
    expect(
      problems(doc('ServiceEntry', 'hosts: [a.com]\nports: [{number: 80, name: http, protocol: HTTP}, {number: 80, name: http, protocol: TCP}]\nresolution: STATIC\nendpoints: [{address: 10.0.0.1, ports: {grpc: 9000}}]\nworkloadSelector: {labels: {app: a}}')),
    ).toEqual([
      'spec.ports[1].number: duplicate port number 80 (also at index 0)',
      'spec.ports[1].name: duplicate port name "http" (also at index 0)',
      'spec.endpoints[0].ports.grpc: port name "grpc" is not one of this ServiceEntry\'s ports',
      'spec.workloadSelector: endpoints and workloadSelector cannot both be set',
    ]);
  });

  it('validates WorkloadEntry address, locality, network and weight', () => {
    accepts(doc('WorkloadEntry', 'address: 2001:db8::1\nlocality: us-east\nweight: 0\nnetwork: net-1'));
    expect(problems(doc('WorkloadEntry', 'address: "not an address"\nlocality: a/b/c/d\nweight: 1.5\nnetwork: "n 1"'))).toEqual([
      'spec.address: invalid address "not an address": expected an IP address or a host name',
      'spec.locality: locality has at most three parts: region/zone/subzone',
      'spec.weight: must be an integer from 0 to 4294967295',
      'spec.network: must be a network name (letters, digits, "-", "_", ".")',
    ]);
  });
});
