// Canary and FaultExperiment input: what the schemas accept, and for bad input an error naming
// file, line, column and field path. Cross-object checks are test/model-canary.test.ts's.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';

function doc(kind: string, spec: string, apiVersion = 'traffic.meshpilot.io/v1alpha1'): string {
  return `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: c, namespace: shop}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
}
const canary = (spec: string, apiVersion?: string) => doc('Canary', spec, apiVersion);
const experiment = (spec: string) => doc('FaultExperiment', spec);

function errors(text: string): string[] {
  return parseConfigText('c.yaml', text).errors.map(formatError);
}

const TARGET = 'target: {host: reviews, route: reviews-canary}\nstable: v1\ncanary: v2';

describe('Canary schema', () => {
  it('accepts the documented example', () => {
    const r = parseConfigText('c.yaml', canary(`${TARGET}\nsteps: [5, 25, 50, 100]\ninterval: 1m\nanalysis: {minRequests: 20, minSuccessRate: 99, maxDropFromStable: 1, maxFailedChecks: 2}\nfinish: handBack`));
    expect(r.errors.map(formatError)).toEqual([]);
    expect(r.objects.map((o) => o.key)).toEqual(['Canary/shop/c']);
  });

  it('is traffic.meshpilot.io only', () => {
    expect(errors(canary(`${TARGET}\nsteps: [100]\ninterval: 1m`, 'networking.istio.io/v1'))).toEqual([
      'c.yaml:1:13 apiVersion: unsupported apiVersion "networking.istio.io/v1" for Canary (meshpilot accepts traffic.meshpilot.io/v1alpha1) (Canary shop/c)',
    ]);
  });

  it('wants increasing steps ending at 100', () => {
    expect(errors(canary(`${TARGET}\nsteps: [5, 50, 25, 90]\ninterval: 1m`))).toEqual([
      'c.yaml:8:18 spec.steps[2]: must be more than the step before (50): steps only increase (Canary shop/c)',
      'c.yaml:8:22 spec.steps[3]: the last step must be 100 (all traffic to the canary) (Canary shop/c)',
    ]);
    expect(errors(canary(`${TARGET}\nsteps: [0, 101]\ninterval: 1m`))).toEqual([
      'c.yaml:8:11 spec.steps[0]: must be a whole percentage from 1 to 100 (Canary shop/c)',
      'c.yaml:8:14 spec.steps[1]: must be a whole percentage from 1 to 100 (Canary shop/c)',
    ]);
    expect(errors(canary(`${TARGET}\nsteps: []\ninterval: 1m`))).toEqual([
      'c.yaml:8:3 spec.steps: must list at least one step, the last one 100 (Canary shop/c)',
    ]);
  });

  it('needs two different subsets, an interval of at least 100ms, and known fields', () => {
    expect(errors(canary('target: {host: reviews, route: r}\nstable: v1\ncanary: v1\nsteps: [100]\ninterval: 50ms\nfinish: keep\nanalysis: {minSuccesRate: 99}'))).toEqual([
      'c.yaml:7:11 spec.canary: must differ from stable: a canary moves traffic between two subsets (Canary shop/c)',
      'c.yaml:9:13 spec.interval: must be at least 100ms (Canary shop/c)',
      'c.yaml:10:11 spec.finish: must be one of promote, handBack (got "keep") (Canary shop/c)',
      'c.yaml:11:14 spec.analysis.minSuccesRate: field not supported by meshpilot (did you mean "minSuccessRate"?) (Canary shop/c)',
    ]);
  });

  it('names missing fields and bad hosts', () => {
    expect(errors(canary('target: {host: "*.shop", route: ""}\nstable: V1'))).toEqual(expect.arrayContaining([
      expect.stringMatching(/^c\.yaml:5:\d+ spec\.target\.host: wildcard host "\*\.shop" is not allowed here \(Canary shop\/c\)$/),
      expect.stringMatching(/^c\.yaml:5:\d+ spec\.target\.route: must not be empty \(Canary shop\/c\)$/),
      expect.stringMatching(/^c\.yaml:6:\d+ spec\.stable: must be a DNS-1123 label/),
      expect.stringMatching(/ spec\.canary: /),
      expect.stringMatching(/ spec\.steps: /),
      expect.stringMatching(/ spec\.interval: /),
    ]));
  });
});

describe('FaultExperiment schema', () => {
  it('accepts the documented example', () => {
    const r = parseConfigText('c.yaml', experiment('target: {host: ratings, routes: [ratings]}\nfault:\n  delay: {fixedDelay: 2s, percentage: {value: 50}}\n  abort: {grpcStatus: UNAVAILABLE, percentage: {value: 10}}\nexpiresAt: "2026-12-07T10:00:00Z"\nguard: {minSuccessRate: 95, minRequests: 20, window: 30s}'));
    expect(r.errors.map(formatError)).toEqual([]);
    expect(r.objects.map((o) => o.key)).toEqual(['FaultExperiment/shop/c']);
  });

  it('checks the fault as a VirtualService fault', () => {
    expect(errors(experiment('target: {host: ratings}\nfault: {abort: {httpStatus: 700, grpcStatus: NOPE}}\nexpiresAt: "2026-12-07T10:00:00Z"'))).toEqual([
      'c.yaml:6:11 spec.fault.abort: only one of httpStatus, grpcStatus may be set (found httpStatus and grpcStatus) (FaultExperiment shop/c)',
      'c.yaml:6:31 spec.fault.abort.httpStatus: must be an HTTP status code from 200 to 599 (FaultExperiment shop/c)',
      expect.stringMatching(/^c\.yaml:6:48 spec\.fault\.abort\.grpcStatus: unknown gRPC status "NOPE"/),
    ]);
    expect(errors(experiment('target: {host: ratings}\nfault: {}\nexpiresAt: "2026-12-07T10:00:00Z"'))).toEqual([
      'c.yaml:6:3 spec.fault: fault must set delay, abort or both (FaultExperiment shop/c)',
    ]);
  });

  it('wants an RFC 3339 expiry, distinct route names and a guard rate', () => {
    expect(errors(experiment('target: {host: ratings, routes: [a, b, a]}\nfault: {abort: {httpStatus: 503, percentage: {value: 1}}}\nexpiresAt: "tomorrow"\nguard: {minRequests: 5, window: 10}'))).toEqual([
      'c.yaml:5:42 spec.target.routes[2]: duplicate route "a" (also at index 0) (FaultExperiment shop/c)',
      'c.yaml:7:14 spec.expiresAt: must be an RFC 3339 time such as "2026-12-07T10:00:00Z" (quote it) (FaultExperiment shop/c)',
      expect.stringMatching(/^c\.yaml:8:\d+ spec\.guard\.minSuccessRate: /),
      expect.stringMatching(/^c\.yaml:8:\d+ spec\.guard\.window: expected a duration string/),
    ]);
    expect(errors(experiment('target: {host: ratings}\nfault: {abort: {httpStatus: 503, percentage: {value: 1}}}\nexpiresAt: "2026-13-40T10:00:00Z"'))).toHaveLength(1);
  });
});
