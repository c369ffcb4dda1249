// Property tests for injection: random pods (containers, init containers, labels, overrides,
// namespace and pod choices) -> injection never throws on valid input, the result passes the
// Kubernetes schema check, keeps the app's containers as they were, is what the webhook's patch
// produces, and injecting again changes nothing; random bad override values -> an
// InjectionInputError naming the annotation, never another exception.
// FC_SEED=<n> replays a run; FC_RUNS=<factor> multiplies the number of runs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ANNOTATIONS, INJECT, InjectionInputError } from '../control-plane/inject/annotations.ts';
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { injectPod, type PodLike } from '../control-plane/inject/inject-pod.ts';
import { AGENT_CONTAINER, INIT_CONTAINER, PROXY_CONTAINER } from '../control-plane/inject/names.ts';
import { applyPatch, podPatch } from '../control-plane/inject/patch.ts';
import { kubernetesProblems } from './helpers/k8s-schema.ts';

const config = loadInjectionConfig();
// A fixed seed by default, so CI is repeatable; FC_SEED=random explores new ground.
const SEED = process.env.FC_SEED === 'random' ? undefined : Number(process.env.FC_SEED ?? '20261122');
const params = (numRuns: number) => ({ numRuns: Math.round(numRuns * (Number(process.env.FC_RUNS ?? '1') || 1)), ...(SEED !== undefined ? { seed: SEED } : {}) });

const dnsLabel = fc.stringMatching(/^[a-z]([a-z0-9-]{0,10}[a-z0-9])?$/);
const labelValue = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,10}[A-Za-z0-9])?$/);
const container = fc.record({ name: dnsLabel, image: fc.constantFrom('example.com/a:1', 'busybox:1.36'), args: fc.option(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), { nil: undefined }) }, { requiredKeys: ['name', 'image'] });
const uniqueContainers = (min: number) => fc.uniqueArray(container, { minLength: min, maxLength: 3, selector: (c) => c.name });
const port = fc.integer({ min: 1, max: 65535 });
const cidr = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 32 })).map(([a, b, n]) => `${a}.${b}.0.0/${n}`);
const overrides = fc.record({
  [ANNOTATIONS.proxyCpu]: fc.constantFrom('50m', '1', '0.5', '250m'),
  [ANNOTATIONS.proxyMemory]: fc.constantFrom('64Mi', '1Gi', '300M'),
  [ANNOTATIONS.proxyLogLevel]: fc.constantFrom('trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'),
  [ANNOTATIONS.excludeInboundPorts]: fc.array(port, { maxLength: 4 }).map((ps) => ps.join(', ')),
  [ANNOTATIONS.excludeOutboundPorts]: fc.array(port, { maxLength: 4 }).map((ps) => ps.join(',')),
  [ANNOTATIONS.excludeOutboundCIDRs]: fc.array(cidr, { maxLength: 3 }).map((cs) => cs.join(',')),
}, { requiredKeys: [] });

const podArb = fc.record({
  labels: fc.dictionary(dnsLabel, labelValue, { maxKeys: 4 }),
  annotations: overrides,
  podChoice: fc.constantFrom(undefined, 'true', 'false'),
  nsChoice: fc.constantFrom(undefined, 'enabled', 'disabled'),
  containers: uniqueContainers(1),
  initContainers: fc.option(uniqueContainers(1), { nil: undefined }),
}).map((r) => {
  const pod: PodLike = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'p-', labels: { ...r.labels, ...(r.podChoice ? { [INJECT]: r.podChoice } : {}) }, annotations: r.annotations },
    spec: { containers: r.containers, ...(r.initContainers ? { initContainers: r.initContainers.map((c) => ({ ...c, name: `i-${c.name}` })) } : {}) },
  };
  const nsLabels: Record<string, string> = r.nsChoice ? { [INJECT]: r.nsChoice } : {};
  return { pod, nsLabels, expected: r.podChoice ? r.podChoice === 'true' : r.nsChoice === 'enabled' };
});

describe('injection properties', () => {
  it('random valid pods: valid, selected as chosen, app untouched, patch-equal, idempotent', () => {
    fc.assert(
      fc.property(podArb, ({ pod, nsLabels, expected }) => {
        const ctx = { namespace: 'shop', namespaceLabels: nsLabels, path: [] };
        const r = injectPod(pod, ctx, config);
        expect(r.injected).toBe(expected);
        if (!r.injected) {
          expect(r.pod).toBe(pod);
          return;
        }
        expect(kubernetesProblems(r.pod as { kind?: unknown })).toEqual([]);
        expect(r.pod.spec!.containers).toEqual(pod.spec!.containers);
        expect(r.pod.spec!.initContainers!.map((c) => c.name)).toEqual([...(pod.spec!.initContainers ?? []).map((c) => c.name), INIT_CONTAINER, AGENT_CONTAINER, PROXY_CONTAINER]);
        // The pod's own volumes stay; the agent's and Envoy's shared ones are added after them.
        expect(r.pod.spec!.volumes!.map((v) => v.name)).toEqual([...(pod.spec!.volumes ?? []).map((v) => v.name), 'meshpilot-run', 'meshpilot-token', 'meshpilot-ca-root']);
        expect(applyPatch(pod, podPatch(pod, r.pod))).toEqual(r.pod);
        const again = injectPod(r.pod, ctx, config);
        expect(again.injected).toBe(false);
        expect(again.pod).toEqual(r.pod);
      }),
      params(200),
    );
  });

  it('random bad override values: an error naming the annotation, never another exception', () => {
    const key = fc.constantFrom(...Object.values(ANNOTATIONS));
    const bad = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('70000', '-1', '1.2.3.4/33', 'fd00::/8', 'lots', 'verbose', '80;http'));
    let rejected = 0;
    fc.assert(
      fc.property(key, bad, (k, v) => {
        const pod: PodLike = { metadata: { annotations: { [k]: v } }, spec: { containers: [{ name: 'a', image: 'b' }] } };
        try {
          injectPod(pod, { namespace: 'shop', namespaceLabels: { [INJECT]: 'enabled' }, path: [] }, config);
        } catch (e) {
          expect(e).toBeInstanceOf(InjectionInputError);
          expect((e as Error).message).toContain(`metadata.annotations[${JSON.stringify(k)}]`);
          rejected++;
        }
      }),
      params(300),
    );
    expect(rejected).toBeGreaterThan(100); // most random values are bad ones; the property is not vacuous
  });
});
