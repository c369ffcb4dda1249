// explain on a served (overlaid) model: the weights of a canary route are named as the Canary's,
// and a running experiment's fault as the FaultExperiment's, each with its file:line; without
// runtime state the VirtualService is the origin, as before.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { explain } from '../control-plane/explain/explain.ts';
import { renderExplanation } from '../control-plane/explain/render.ts';
import { compile } from '../control-plane/model/compile.ts';
import { applyRuntime } from '../control-plane/model/runtime-overlay.ts';
import { NO_RUNTIME, type RuntimeState } from '../control-plane/rollout/types.ts';

const FIXTURE = 'test/golden/in/canary.yaml';
const TEXT = fs.readFileSync(FIXTURE, 'utf8');
const lineOf = (text: string, from = 0) => TEXT.split('\n').findIndex((l, i) => i >= from && l.includes(text)) + 1;
const state = compile(parseConfigText(FIXTURE, TEXT));
const served = (rt: RuntimeState) => ({ ...state, model: applyRuntime(state.model, rt) });
const RUNNING: RuntimeState = { canaryWeights: new Map([['Canary/default/reviews', 25]]), activeExperiments: new Set(['FaultExperiment/default/ratings-delay']) };
const CALLER = { labels: { app: 'productpage' }, namespace: 'default' };

describe('explain names the rollout rules', () => {
  it.each(['envoy', 'grpc'] as const)('%s caller: the Canary sets the weights', (kind) => {
    const e = explain(served(RUNNING), { ...CALLER, kind, request: 'POST http://reviews.default.svc.cluster.local:9080/x' });
    expect(e.destinations.map((d) => [d.subset, d.share])).toEqual([['v1', 0.75], ['v2', 0.25]]);
    const canaryLine = lineOf('steps: [10, 50, 100]');
    expect(e.weightsFrom).toEqual({ key: 'Canary/default/reviews', at: `${FIXTURE}:${canaryLine}`, path: 'spec.steps' });
    expect(renderExplanation(e)).toContain(`weights:  set by the rollout of Canary default/reviews spec.steps (${FIXTURE}:${canaryLine}), not the VirtualService's`);
  });

  it('a running experiment is the origin of the fault', () => {
    const e = explain(served(RUNNING), { ...CALLER, kind: 'grpc', request: 'POST http://ratings.default.svc.cluster.local:9080/x' });
    const at = `${FIXTURE}:${lineOf('fault:', lineOf('name: ratings-delay'))}`;
    expect(e.faults.map((f) => [f.kind, f.share, f.rule])).toEqual([['delay', 0.5, { key: 'FaultExperiment/default/ratings-delay', at, path: 'spec.fault' }]]);
    expect(e.weightsFrom).toBeUndefined();
    expect(renderExplanation(e)).toContain(`<- FaultExperiment default/ratings-delay spec.fault (${at})`);
  });

  it('without runtime state: no rollout origin, the VirtualService decides', () => {
    const e = explain(served(NO_RUNTIME), { ...CALLER, kind: 'grpc', request: 'POST http://reviews.default.svc.cluster.local:9080/x' });
    expect(e.weightsFrom).toBeUndefined();
    expect(e.destinations.map((d) => [d.subset, d.share])).toEqual([['v1', 1]]);
    expect(explain(served(NO_RUNTIME), { ...CALLER, kind: 'grpc', request: 'POST http://ratings.default.svc.cluster.local:9080/x' }).faults).toEqual([]);
  });
});
