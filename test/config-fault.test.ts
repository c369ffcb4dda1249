// VirtualService fault injection and mirroring: what the schema accepts, the errors bad input
// gets (at the field that is wrong), and what the model makes of good input.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';

function vs(http: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http: [${http}]\n`;
}

const route = 'route: [{destination: {host: a}}]';

/** `path: message` of every schema error. */
function problems(text: string): string[] {
  return parseConfigText('t.yaml', text).errors.map((e) => `${e.path}: ${e.message}`);
}

describe('fault schema', () => {
  it('accepts Istio fault rules: delay, abort by HTTP or gRPC status, decimal percentages, legacy percent', () => {
    for (const fault of [
      '{delay: {fixedDelay: 7s, percentage: {value: 100}}}',
      '{abort: {httpStatus: 503, percentage: {value: 0.1}}}',
      '{abort: {grpcStatus: UNAVAILABLE, percentage: {value: 50}}}',
      '{delay: {fixedDelay: 1.5s, percent: 10}, abort: {grpcStatus: DEADLINE_EXCEEDED, percentage: {value: 0}}}',
    ]) {
      const r = parseConfigText('t.yaml', vs(`{fault: ${fault}, ${route}}`));
      expect(r.errors.map(formatError), fault).toEqual([]);
      expect(r.objects).toHaveLength(1);
    }
  });

  it('rejects a bad abort at the field that is wrong', () => {
    expect(problems(vs(`{fault: {abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}}, ${route}}`))).toEqual([
      'spec.http[0].fault.abort: only one of httpStatus, grpcStatus may be set (found httpStatus and grpcStatus)',
    ]);
    expect(problems(vs(`{fault: {abort: {percentage: {value: 10}}}, ${route}}`))).toEqual(['spec.http[0].fault.abort: exactly one of httpStatus, grpcStatus must be set']);
    expect(problems(vs(`{fault: {abort: {httpStatus: 700}}, ${route}}`))).toEqual(['spec.http[0].fault.abort.httpStatus: must be an HTTP status code from 200 to 599']);
    expect(problems(vs(`{fault: {abort: {grpcStatus: UNAVAILBLE}}, ${route}}`))).toEqual([
      expect.stringMatching(/^spec\.http\[0\]\.fault\.abort\.grpcStatus: unknown gRPC status "UNAVAILBLE" \(one of CANCELLED, .*UNAVAILABLE/),
    ]);
    expect(problems(vs(`{fault: {abort: {grpcStatus: OK}}, ${route}}`))).toEqual([
      'spec.http[0].fault.abort.grpcStatus: OK is not an error: an abort needs an error status such as UNAVAILABLE',
    ]);
    expect(problems(vs(`{fault: {abort: {grpcStatus: 14}}, ${route}}`))).toEqual(['spec.http[0].fault.abort.grpcStatus: must be a gRPC status name such as UNAVAILABLE']);
    expect(problems(vs(`{fault: {abort: {http2Error: REFUSED_STREAM}}, ${route}}`))).toContain('spec.http[0].fault.abort.http2Error: field not supported by meshpilot');
  });

  it('rejects percentages outside 0-100 and malformed ones', () => {
    const bad = 'must be a percentage from 0 to 100 (decimals allowed, e.g. 0.1)';
    expect(problems(vs(`{fault: {abort: {httpStatus: 503, percentage: {value: 150}}}, ${route}}`))).toEqual([`spec.http[0].fault.abort.percentage.value: ${bad}`]);
    expect(problems(vs(`{fault: {delay: {fixedDelay: 1s, percentage: {value: -0.5}}}, ${route}}`))).toEqual([`spec.http[0].fault.delay.percentage.value: ${bad}`]);
    expect(problems(vs(`{fault: {abort: {httpStatus: 503, percentage: {value: "50"}}}, ${route}}`))).toEqual([`spec.http[0].fault.abort.percentage.value: ${bad}`]);
    expect(problems(vs(`{fault: {abort: {httpStatus: 503, percentage: 50}}, ${route}}`))).toEqual(['spec.http[0].fault.abort.percentage: expected a map, got number 50']);
    expect(problems(vs(`{fault: {abort: {httpStatus: 503, percentage: {}}}, ${route}}`))).toEqual(['spec.http[0].fault.abort.percentage.value: required field is missing']);
    expect(problems(vs(`{fault: {delay: {fixedDelay: 1s, percent: 5.5}}, ${route}}`))).toEqual(['spec.http[0].fault.delay.percent: must be a percentage from 0 to 100']);
    expect(problems(vs(`{fault: {delay: {fixedDelay: 1s, percent: 5, percentage: {value: 5}}}, ${route}}`))).toEqual([
      'spec.http[0].fault.delay.percent: percentage and the deprecated percent cannot both be set; use percentage',
    ]);
  });

  it('needs a fixed delay of at least 1ms, and a fault that does something', () => {
    expect(problems(vs(`{fault: {delay: {fixedDelay: 0s, percentage: {value: 5}}}, ${route}}`))).toEqual(['spec.http[0].fault.delay.fixedDelay: duration must be at least 1ms']);
    expect(problems(vs(`{fault: {delay: {fixedDelay: 5, percentage: {value: 5}}}, ${route}}`))).toEqual([
      'spec.http[0].fault.delay.fixedDelay: expected a duration string such as "10s" or "500ms"',
    ]);
    expect(problems(vs(`{fault: {delay: {percentage: {value: 5}}}, ${route}}`))).toEqual(['spec.http[0].fault.delay: delay must set fixedDelay']);
    expect(problems(vs(`{fault: {delay: {exponentialDelay: 1s}}, ${route}}`))).toContain('spec.http[0].fault.delay.exponentialDelay: field not supported by meshpilot');
    expect(problems(vs(`{fault: {}, ${route}}`))).toEqual(['spec.http[0].fault: fault must set delay, abort or both']);
    expect(problems(vs('{redirect: {uri: /b}, fault: {abort: {httpStatus: 503}}}'))).toEqual(['spec.http[0].fault: has no effect on a redirect route']);
  });
});

describe('mirror schema', () => {
  it('accepts mirror with mirrorPercentage, and mirrors[] with a percentage each', () => {
    for (const http of [
      `{mirror: {host: b, subset: v1, port: {number: 80}}, mirrorPercentage: {value: 10}, ${route}}`,
      `{mirror: {host: b}, ${route}}`,
      `{mirrors: [{destination: {host: b}}, {destination: {host: c, subset: v3}, percentage: {value: 12.5}}], ${route}}`,
    ]) {
      expect(parseConfigText('t.yaml', vs(http)).errors.map(formatError), http).toEqual([]);
    }
  });

  it('keeps mirror and mirrors apart and mirrorPercentage with mirror', () => {
    expect(problems(vs(`{mirror: {host: b}, mirrors: [{destination: {host: c}}], ${route}}`))).toEqual([
      'spec.http[0].mirrors: mirror and mirrors cannot both be set; list every target in mirrors',
    ]);
    expect(problems(vs(`{mirrorPercentage: {value: 5}, ${route}}`))).toEqual(['spec.http[0].mirrorPercentage: has no effect without mirror']);
    expect(problems(vs(`{mirrorPercentage: {value: 5}, mirrors: [{destination: {host: c}}], ${route}}`))).toEqual([
      'spec.http[0].mirrorPercentage: applies to mirror only; give each entry of mirrors its own percentage',
    ]);
    expect(problems(vs(`{mirrors: [], ${route}}`))).toEqual(['spec.http[0].mirrors: must list at least one mirror target (or leave mirrors out)']);
    expect(problems(vs(`{mirrors: [{destination: {host: c}, percentage: {value: 101}}], ${route}}`))).toEqual([
      'spec.http[0].mirrors[0].percentage.value: must be a percentage from 0 to 100 (decimals allowed, e.g. 0.1)',
    ]);
    expect(problems(vs(`{mirror: {host: b}, mirrorPercent: 5, ${route}}`))).toEqual([
      'spec.http[0].mirrorPercent: field not supported by meshpilot (did you mean "mirrorPercentage"?)',
    ]);
    expect(problems(vs('{redirect: {uri: /b}, mirror: {host: b}}'))).toEqual(['spec.http[0].mirror: has no effect on a redirect route']);
  });
});

describe('fault and mirror in the model', () => {
  const services = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: grpc, protocol: GRPC}]
  endpoints:
  - {address: 10.0.1.1, labels: {version: v1}}
  - {address: 10.0.1.3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v3, labels: {version: v3}}]
---
`;

  function compiled(http: string) {
    const text = `${services}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http: [${http}]\n`;
    const load = parseConfigText('t.yaml', text);
    expect(load.errors.map(formatError)).toEqual([]);
    return compile(load);
  }

  it('resolves durations, percentages, status names and mirror clusters', () => {
    const state = compiled(
      '{fault: {delay: {fixedDelay: 1.5s, percentage: {value: 0.1}}, abort: {grpcStatus: UNAVAILABLE, percentage: {value: 50}}}, route: [{destination: {host: reviews, subset: v1}}], mirror: {host: reviews, subset: v3}}',
    );
    expect(state.errors.map(formatIssue)).toEqual([]);
    const [r] = state.model.routeTables.find((t) => t.host === 'reviews.default.svc.cluster.local')!.routes;
    expect(r!.fault).toEqual({ delay: { fixedDelayMs: 1500, percent: 0.1 }, abort: { grpcStatus: 14, percent: 50 } });
    expect(r!.mirrors).toEqual([{ cluster: 'outbound|9080|v3|reviews.default.svc.cluster.local', host: 'reviews.default.svc.cluster.local', port: 9080, subset: 'v3', percent: 100 }]);
  });

  it('rejects a rule whose mirror names an unknown host or subset, like a route destination', () => {
    const state = compiled('{route: [{destination: {host: reviews, subset: v1}}], mirrors: [{destination: {host: shadow}}, {destination: {host: reviews, subset: v2}}]}');
    expect(state.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      'spec.http[0].mirrors[0].destination.host: mirror host shadow.default.svc.cluster.local is not a known service (declare it with a ServiceEntry)',
      'spec.http[0].mirrors[1].destination.subset: subset v2 is not defined by any DestinationRule for reviews.default.svc.cluster.local',
    ]);
    // The rule is left out: reviews gets the default route, with no mirror.
    const routes = state.model.routeTables.find((t) => t.host === 'reviews.default.svc.cluster.local')!.routes;
    expect(routes.map((r) => [r.name, r.mirrors])).toEqual([['default', undefined]]);
  });
});
