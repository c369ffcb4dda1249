// RateLimit input: what the schema accepts, and for bad input an error naming file, line, column
// and field path. Cross-object errors (unknown host or port) are checked in test/rate-limit.test.ts
// and the ratelimit-invalid-references golden case.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';

function rateLimit(spec: string, apiVersion = 'traffic.meshpilot.io/v1alpha1'): string {
  return `apiVersion: ${apiVersion}\nkind: RateLimit\nmetadata: {name: r, namespace: shop}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;
}

/** Every error as `file:line:col path: message (Kind ns/name)`. */
function errors(text: string): string[] {
  return parseConfigText('rl.yaml', text).errors.map(formatError);
}

describe('RateLimit schema', () => {
  it('accepts the documented example', () => {
    const r = parseConfigText('rl.yaml', rateLimit([
      'destination: {host: ratings, port: 9080}',
      'limit: {requests: 5000, per: 1s}',
      'overrides:',
      '- source: {labels: {app: reviews}}',
      '  limit: {requests: 10, per: 1s}',
      '- source: {namespace: batch}',
      '  limit: {requests: 100, per: 1m}',
      '- source: {labels: {app: reports}, namespace: ops}',
      '  limit: {requests: 1, per: 50ms}',
      'shadow: false',
      'responseHeaders: true',
    ].join('\n')));
    expect(r.errors.map(formatError)).toEqual([]);
    expect(r.objects.map((o) => o.key)).toEqual(['RateLimit/shop/r']);
  });

  it('accepts overrides without a service-wide limit', () => {
    expect(errors(rateLimit('destination: {host: ratings}\noverrides:\n- source: {namespace: batch}\n  limit: {requests: 1, per: 1s}'))).toEqual([]);
  });

  it('refuses intervals Envoy would refill faster than every 50ms', () => {
    expect(errors(rateLimit('destination: {host: ratings}\nlimit: {requests: 10, per: 10ms}'))).toEqual([
      'rl.yaml:6:30 spec.limit.per: must be at least 50ms (Envoy refills rate limit token buckets at most every 50ms) (RateLimit shop/r)',
    ]);
    expect(errors(rateLimit('destination: {host: ratings}\noverrides:\n- source: {namespace: a}\n  limit: {requests: 1, per: 49ms}'))).toEqual([
      'rl.yaml:8:31 spec.overrides[0].limit.per: must be at least 50ms (Envoy refills rate limit token buckets at most every 50ms) (RateLimit shop/r)',
    ]);
    expect(errors(rateLimit('destination: {host: ratings}\nlimit: {requests: 10, per: 0s}'))).toEqual([
      'rl.yaml:6:30 spec.limit.per: duration must be at least 1ms (RateLimit shop/r)',
    ]);
  });

  it('needs a whole, positive number of requests and a duration', () => {
    expect(errors(rateLimit('destination: {host: ratings}\nlimit: {requests: 0, per: 1s}'))).toEqual([
      'rl.yaml:6:21 spec.limit.requests: must be a whole number of requests from 1 to 4294967295 (RateLimit shop/r)',
    ]);
    expect(errors(rateLimit('destination: {host: ratings}\nlimit: {requests: 1.5, per: 1 second}'))).toEqual([
      'rl.yaml:6:21 spec.limit.requests: must be a whole number of requests from 1 to 4294967295 (RateLimit shop/r)',
      'rl.yaml:6:31 spec.limit.per: invalid duration "1 second": expected e.g. 10s, 0.5s, 100ms, 1m, 1h or 1m30s (RateLimit shop/r)',
    ]);
    expect(errors(rateLimit('destination: {host: ratings}\nlimit: {per: 1s}'))).toEqual([
      'rl.yaml:6:3 spec.limit.requests: required field is missing (RateLimit shop/r)',
    ]);
  });

  it('needs a limit or overrides, and a destination', () => {
    expect(errors(rateLimit('destination: {host: ratings}'))).toEqual(['rl.yaml:4:1 spec: set limit, overrides or both (RateLimit shop/r)']);
    expect(errors(rateLimit('destination: {host: ratings}\noverrides: []'))).toEqual([
      'rl.yaml:6:3 spec.overrides: must list at least one override (or leave the field out) (RateLimit shop/r)',
    ]);
    expect(errors(rateLimit('limit: {requests: 1, per: 1s}'))).toEqual(['rl.yaml:4:1 spec.destination: required field is missing (RateLimit shop/r)']);
  });

  it('needs each override source to select something', () => {
    expect(errors(rateLimit([
      'destination: {host: ratings}',
      'overrides:',
      '- source: {}',
      '  limit: {requests: 1, per: 1s}',
      '- source: {labels: {}}',
      '  limit: {requests: 1, per: 1s}',
      '- source: {namespace: Not_A_Namespace}',
      '  limit: {requests: 1, per: 1s}',
    ].join('\n')))).toEqual([
      'rl.yaml:7:5 spec.overrides[0].source: set labels, namespace or both (RateLimit shop/r)',
      'rl.yaml:9:14 spec.overrides[1].source.labels: must name at least one label (leave it out to select by namespace only) (RateLimit shop/r)',
      expect.stringMatching(/^rl\.yaml:11:25 spec\.overrides\[2\]\.source\.namespace: must be a DNS-1123 label/),
    ]);
  });

  it('checks the destination host and port', () => {
    expect(errors(rateLimit('destination: {host: "*.example.com", port: 70000}\nlimit: {requests: 1, per: 1s}'))).toEqual([
      'rl.yaml:5:23 spec.destination.host: wildcard host "*.example.com" is not allowed here (RateLimit shop/r)',
      'rl.yaml:5:46 spec.destination.port: must be a port number from 1 to 65535 (RateLimit shop/r)',
    ]);
  });

  it('names fields it does not know, and wrong value types', () => {
    expect(errors(rateLimit('destination: {host: ratings, route: r1}\nlimit: {requests: 10, per: 1s, burst: 20}'))).toEqual([
      'rl.yaml:5:32 spec.destination.route: field not supported by meshpilot (RateLimit shop/r)',
      'rl.yaml:6:34 spec.limit.burst: field not supported by meshpilot (RateLimit shop/r)',
    ]);
    expect(errors(rateLimit('destination: {host: ratings}\nlimit: {requests: 1, per: 1s}\nshadow: "yes"\nresponseHeaders: 1'))).toEqual([
      'rl.yaml:7:11 spec.shadow: expected true or false, got the string "yes" (RateLimit shop/r)',
      'rl.yaml:8:20 spec.responseHeaders: expected true or false, got number 1 (RateLimit shop/r)',
    ]);
  });

  it('belongs to our API group, not Istio\'s', () => {
    expect(errors(rateLimit('destination: {host: ratings}\nlimit: {requests: 1, per: 1s}', 'networking.istio.io/v1'))).toEqual([
      'rl.yaml:1:13 apiVersion: unsupported apiVersion "networking.istio.io/v1" for RateLimit (meshpilot accepts traffic.meshpilot.io/v1alpha1) (RateLimit shop/r)',
    ]);
  });
});
