// Rules Istio's validation refuses and meshpilot refuses too, each with a positioned error: empty
// trafficPolicy / port-level policy / connectionPool, an empty prefix in a header or method match,
// retry settings next to `attempts: 0`, a locality weight of 0, and a DENY policy without rules.
// Next to each refusal, the nearest form that is accepted.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';

const errorsOf = (text: string) => parseConfigText('s.yaml', text).errors.map(formatError);

function accepts(text: string): void {
  const r = parseConfigText('s.yaml', text);
  expect(r.errors.map(formatError)).toEqual([]);
  expect(r.objects).toHaveLength(1);
}

/** A DestinationRule for `ratings`; `body` is the spec below `host` (lines from column 3). */
function dr(body: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: ratings-policy, namespace: shop }\nspec:\n  host: ratings\n${body.replace(/^/gm, '  ')}\n`;
}

/** A VirtualService for `ratings` with one http route; `extra` lines go into it (from column 5). */
function vs(extra: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: ratings-routes, namespace: shop }\nspec:\n  hosts: [ratings]\n  http:\n  - route: [{ destination: { host: ratings } }]\n${extra.replace(/^/gm, '    ')}\n`;
}

function authz(spec: string): string {
  return `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: block-admin, namespace: shop }\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
}

const DR = '(DestinationRule shop/ratings-policy)';
const VS = '(VirtualService shop/ratings-routes)';
const AP = '(AuthorizationPolicy shop/block-admin)';

describe('DestinationRule: sections that set nothing', () => {
  it('refuses an empty trafficPolicy, at the top and in a subset', () => {
    expect(errorsOf(dr('trafficPolicy: {}'))).toEqual([
      `s.yaml:6:3 spec.trafficPolicy: an empty trafficPolicy sets nothing, which Istio does not accept: set one of loadBalancer, connectionPool, outlierDetection, tls, portLevelSettings, or leave trafficPolicy out ${DR}`,
    ]);
    expect(errorsOf(dr('subsets:\n- name: canary\n  labels: { track: canary }\n  trafficPolicy: {}'))).toEqual([
      expect.stringMatching(/^s\.yaml:9:5 spec\.subsets\[0\]\.trafficPolicy: an empty trafficPolicy sets nothing/),
    ]);
    accepts(dr('trafficPolicy: { outlierDetection: {} }'));
    accepts(dr('trafficPolicy: { portLevelSettings: [{ port: { number: 8080 }, tls: { mode: DISABLE } }] }'));
  });

  it('refuses a port-level entry that names only its port', () => {
    expect(errorsOf(dr('trafficPolicy:\n  portLevelSettings:\n  - port: { number: 8080 }'))).toEqual([
      `s.yaml:8:7 spec.trafficPolicy.portLevelSettings[0]: a port-level policy that sets nothing but its port is not accepted (as in Istio): set one of loadBalancer, connectionPool, outlierDetection, tls, or remove the entry ${DR}`,
    ]);
  });

  it('refuses an empty connectionPool, also next to other settings and in a subset', () => {
    const msg = `an empty connectionPool sets nothing, which Istio does not accept: set tcp and/or http, or leave connectionPool out ${DR}`;
    expect(errorsOf(dr('trafficPolicy:\n  connectionPool: {}'))).toEqual([`s.yaml:7:5 spec.trafficPolicy.connectionPool: ${msg}`]);
    expect(errorsOf(dr('trafficPolicy:\n  loadBalancer: { simple: LEAST_REQUEST }\n  connectionPool: {}\n  outlierDetection: { consecutive5xxErrors: 3 }'))).toEqual([
      `s.yaml:8:5 spec.trafficPolicy.connectionPool: ${msg}`,
    ]);
    expect(errorsOf(dr('subsets:\n- name: canary\n  trafficPolicy:\n    loadBalancer: { simple: RANDOM }\n    connectionPool: {}'))).toEqual([
      `s.yaml:10:7 spec.subsets[0].trafficPolicy.connectionPool: ${msg}`,
    ]);
    accepts(dr('trafficPolicy:\n  connectionPool: { tcp: {} }'));
    accepts(dr('trafficPolicy:\n  connectionPool: { http: { maxRetries: 4 } }'));
  });
});

describe('DestinationRule: locality weights', () => {
  it('refuses a weight of 0 even when the weights add up to 100', () => {
    const text = dr('trafficPolicy:\n  loadBalancer:\n    localityLbSetting:\n      distribute:\n      - from: eu-west/zone-a/*\n        to:\n          eu-west/zone-a/*: 0\n          eu-west/zone-b/*: 100');
    expect(errorsOf(text)).toEqual([
      `s.yaml:12:31 spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to["eu-west/zone-a/*"]: must be an integer from 1 to 100 (the weights add up to 100; leave out a locality that should get no calls) ${DR}`,
    ]);
    accepts(dr('trafficPolicy:\n  loadBalancer:\n    localityLbSetting:\n      distribute:\n      - from: eu-west/zone-a/*\n        to: { eu-west/zone-a/*: 1, eu-west/zone-b/*: 99 }'));
  });
});

describe('VirtualService: empty prefixes and disabled retries', () => {
  it('refuses an empty prefix in a header, withoutHeaders or method match, not in uri', () => {
    expect(errorsOf(vs('match:\n- headers:\n    x-tenant: { prefix: "" }'))).toEqual([
      `s.yaml:10:29 spec.http[0].match[0].headers["x-tenant"].prefix: an empty prefix matches every value, which Istio does not accept here; write \`{}\` to match any value of a header that is present ${VS}`,
    ]);
    expect(errorsOf(vs('match:\n- withoutHeaders:\n    x-debug: { prefix: "" }'))).toEqual([
      expect.stringMatching(/^s\.yaml:10:28 spec\.http\[0\]\.match\[0\]\.withoutHeaders\["x-debug"\]\.prefix: an empty prefix matches every value/),
    ]);
    expect(errorsOf(vs('match:\n- method: { prefix: "" }'))).toEqual([
      `s.yaml:9:25 spec.http[0].match[0].method.prefix: an empty prefix matches every value, which Istio does not accept here; leave \`method\` out to match every method ${VS}`,
    ]);
    accepts(vs('match:\n- uri: { prefix: "" }\n  headers:\n    x-tenant: {}\n    x-region: { prefix: eu- }'));
  });

  it('refuses perTryTimeout or retryOn next to attempts: 0', () => {
    expect(errorsOf(vs('retries: { attempts: 0, perTryTimeout: 3s, retryOn: "reset,503" }'))).toEqual([
      `s.yaml:8:26 spec.http[0].retries.attempts: attempts: 0 turns retries off, so perTryTimeout and retryOn would never apply (as Istio, meshpilot refuses this): remove them, or set attempts to 1 or more ${VS}`,
    ]);
    expect(errorsOf(vs('retries:\n  attempts: 0\n  perTryTimeout: 1s'))).toEqual([
      `s.yaml:9:17 spec.http[0].retries.attempts: attempts: 0 turns retries off, so perTryTimeout would never apply (as Istio, meshpilot refuses this): remove it, or set attempts to 1 or more ${VS}`,
    ]);
    accepts(vs('retries: { attempts: 0 }'));
    accepts(vs('retries: { attempts: 1, perTryTimeout: 3s, retryOn: "reset,503" }'));
  });
});

describe('AuthorizationPolicy: DENY without rules', () => {
  it('refuses a DENY policy with no rules or an empty list of them', () => {
    const msg = 'a DENY policy needs at least one rule (Istio refuses one without: it would deny nothing); to deny every request write `rules: [{}]`, or an ALLOW policy without rules (`spec: {}`)';
    expect(errorsOf(authz('selector: { matchLabels: { app: admin } }\naction: DENY'))).toEqual([`s.yaml:6:11 spec.action: ${msg} ${AP}`]);
    expect(errorsOf(authz('action: DENY\nrules: []'))).toEqual([`s.yaml:6:3 spec.rules: ${msg} ${AP}`]);
    accepts(authz('action: DENY\nrules: [{}]'));
    accepts(authz('action: ALLOW'));
    accepts(authz('{}'));
  });
});
