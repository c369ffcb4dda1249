// DestinationRule load balancer and connection pool fields Istio has beyond the algorithm: what
// the schema accepts, the errors bad values get (at the field), and what the model makes of them.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';
import { compile } from '../control-plane/model/compile.ts';

const SE = `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\nspec:\n  hosts: [a.default.svc.cluster.local]\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.0.0.1}]\n---\n`;
const dr = (trafficPolicy: string) => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec:\n  host: a\n  trafficPolicy: ${trafficPolicy}\n`;
const problems = (text: string) => parseConfigText('t.yaml', text).errors.map((e) => `${e.path}: ${e.message}`);

describe('DestinationRule loadBalancer and connectionPool fields', () => {
  it('accepts a loadBalancer with only warmup, warmupDurationSecs, or nothing, as Istio does', () => {
    for (const lb of ['{warmup: {duration: 300s}}', '{warmup: {duration: 300s, minimumPercent: 5.0, aggression: 5.0}}', '{warmupDurationSecs: 60s}', '{}', '{simple: ROUND_ROBIN, warmup: {duration: 1s}}']) {
      expect(problems(dr(`{loadBalancer: ${lb}}`)), lb).toEqual([]);
    }
  });

  it('rejects bad warmup values, two algorithms, bad cookie attributes and unknown keepalive fields at the field', () => {
    expect(problems(dr('{loadBalancer: {warmup: {minimumPercent: 5}}}'))).toEqual(['spec.trafficPolicy.loadBalancer.warmup.duration: required field is missing']);
    expect(problems(dr('{loadBalancer: {warmup: {duration: 1s, minimumPercent: 150}}}'))).toEqual(['spec.trafficPolicy.loadBalancer.warmup.minimumPercent: must be from 0 to 100']);
    expect(problems(dr('{loadBalancer: {warmup: {duration: 1s, aggression: 0.5}}}'))).toEqual(['spec.trafficPolicy.loadBalancer.warmup.aggression: must be at least 1']);
    expect(problems(dr('{loadBalancer: {warmup: {duration: 0s}}}'))).toEqual(['spec.trafficPolicy.loadBalancer.warmup.duration: duration must be at least 1ms']);
    expect(problems(dr('{loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}'))).toEqual([expect.stringMatching(/^spec\.trafficPolicy\.loadBalancer: only one of simple, consistentHash may be set/)]);
    expect(problems(dr('{loadBalancer: {consistentHash: {httpCookie: {name: s, attributes: [{name: Secure}, {name: Secure}]}}}}'))).toEqual([
      expect.stringMatching(/^spec\.trafficPolicy\.loadBalancer\.consistentHash\.httpCookie\.attributes\[1\]\.name: duplicate cookie attribute name/),
    ]);
    expect(problems(dr('{loadBalancer: {consistentHash: {httpCookie: {name: s, attributes: [{name: "bad name"}]}}}}'))).toEqual(['spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[0].name: invalid HTTP header name']);
    expect(problems(dr('{connectionPool: {http: {http2KeepAlive: {intervall: 1s, timeout: 1s}}}}'))).toEqual([expect.stringMatching(/^spec\.trafficPolicy\.connectionPool\.http\.http2KeepAlive\.intervall: /)]);
    expect(problems(dr('{connectionPool: {http: {http2KeepAlive: {interval: 15s}}}}'))).toEqual(['spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout: required field is missing']);
    expect(problems(dr('{connectionPool: {http: {h2UpgradePolicy: ALWAYS}}}'))).toEqual([expect.stringMatching(/^spec\.trafficPolicy\.connectionPool\.http\.h2UpgradePolicy: must be one of DEFAULT, DO_NOT_UPGRADE, UPGRADE/)]);
  });

  it('resolves warmup (warmup over warmupDurationSecs), keepalive and h2 upgrade', () => {
    const policy = (tp: string) => {
      const state = compile(parseConfigText('t.yaml', SE + dr(tp)));
      expect(state.errors.map((e) => ('message' in e ? e.message : formatError(e)))).toEqual([]);
      return state.model.clusters.find((c) => c.name === 'outbound|80||a.default.svc.cluster.local')!.policy;
    };
    expect(policy('{loadBalancer: {warmup: {duration: 2m, minimumPercent: 5}, warmupDurationSecs: 10s}}').slowStart).toEqual({ windowMs: 120_000, minimumPercent: 5 });
    expect(policy('{loadBalancer: {warmupDurationSecs: 10s}}').slowStart).toEqual({ windowMs: 10_000 });
    expect(policy('{connectionPool: {http: {http2KeepAlive: {interval: 15s, timeout: 2s}, h2UpgradePolicy: UPGRADE}}}').connectionPool).toEqual({ http2KeepAlive: { intervalMs: 15_000, timeoutMs: 2_000 }, h2Upgrade: true });
    expect(policy('{connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}}').connectionPool).toEqual({});
  });
});
