// One AdmissionReview (admission.k8s.io/v1) in, the HTTP answer out; no I/O except the namespace
// lookup it is given. The documented answers (README, "Sidecar injection"):
//   not an AdmissionReview v1 with a request uid   -> HTTP 400 {error}; the API server then applies
//   (or a pod not shaped like one, or nested          the webhook's failurePolicy (Fail: not admitted)
//   more than MAX_POD_DEPTH levels)
//   a request for something other than a pod CREATE -> allowed unchanged, with a warning
//                                                     (only pods are ever changed; blocking unrelated
//                                                     objects over a misconfigured rule helps no one)
//   a pod meshpilot cannot read (bad annotation)    -> allowed: false, status 400 naming the field
//   a pod not selected                              -> allowed unchanged
//   a selected pod                                  -> allowed with a JSONPatch
//   the namespace lookup fails                      -> HTTP 500; failurePolicy decides
import { z } from 'zod';
import { InjectionInputError } from '../inject/annotations.ts';
import type { InjectionConfig } from '../inject/config.ts';
import { injectPod, type PodLike } from '../inject/inject-pod.ts';
import { podPatch } from '../inject/patch.ts';
import { MAX_POD_DEPTH, nestedDeeperThan, PodShape } from './pod-shape.ts';

export type AdmissionOutcome = 'injected' | 'skipped' | 'rejected' | 'error';

export interface AdmissionDeps {
  config: InjectionConfig;
  /** The namespace's labels; rejects when they cannot be had (answered with HTTP 500). */
  namespaceLabels: (namespace: string) => Promise<Record<string, string>>;
}

export interface AdmissionAnswer {
  status: number;
  body: unknown;
  outcome: AdmissionOutcome;
  /** Why, for the log. */
  message: string;
}

const ReviewSchema = z.object({
  apiVersion: z.literal('admission.k8s.io/v1', { error: 'expected apiVersion admission.k8s.io/v1' }),
  kind: z.literal('AdmissionReview', { error: 'expected kind AdmissionReview' }),
  request: z.object({
    uid: z.string({ error: 'expected a string' }).min(1, 'must not be empty'),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    operation: z.string(),
    namespace: z.string().optional(),
    object: z.unknown().optional(),
  }),
});

function review(response: Record<string, unknown>) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

export function malformed(message: string): AdmissionAnswer {
  return { status: 400, body: { error: `malformed AdmissionReview: ${message}` }, outcome: 'rejected', message };
}

export async function answerReview(body: unknown, deps: AdmissionDeps): Promise<AdmissionAnswer> {
  const parsed = ReviewSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return malformed(`${issue.path.join('.') || '(body)'}: ${issue.message}`);
  }
  const req = parsed.data.request;
  const { group, version, kind } = req.kind;
  if (group !== '' || version !== 'v1' || kind !== 'Pod' || req.operation !== 'CREATE') {
    const what = `${group ? `${group}/` : ''}${version} ${kind} ${req.operation}`;
    const message = `meshpilot injects sidecars into pods on CREATE only; ${what} allowed unchanged`;
    return { status: 200, body: review({ uid: req.uid, allowed: true, warnings: [message] }), outcome: 'skipped', message };
  }
  const pod = req.object;
  if (typeof pod !== 'object' || pod === null || Array.isArray(pod)) return malformed('request.object: expected the pod');
  if (nestedDeeperThan(pod, MAX_POD_DEPTH)) return malformed(`request.object: nested more than ${MAX_POD_DEPTH} levels deep`);
  const shape = PodShape.safeParse(pod);
  if (!shape.success) {
    const issue = shape.error.issues[0]!;
    return malformed(`${['request', 'object', ...issue.path.map(String)].join('.')}: ${issue.message}`);
  }
  const namespace = req.namespace || ((pod as PodLike).metadata?.namespace as string | undefined);
  if (!namespace) return malformed('request.namespace: missing');

  let namespaceLabels: Record<string, string>;
  try {
    namespaceLabels = await deps.namespaceLabels(namespace);
  } catch (e) {
    const message = `cannot read namespace ${namespace}: ${(e as Error).message}`;
    return { status: 500, body: { error: message }, outcome: 'error', message };
  }
  try {
    const r = injectPod(pod as PodLike, { namespace, namespaceLabels, path: [] }, deps.config);
    if (!r.injected) return { status: 200, body: review({ uid: req.uid, allowed: true }), outcome: 'skipped', message: r.reason };
    const patch = Buffer.from(JSON.stringify(podPatch(pod, r.pod))).toString('base64');
    return { status: 200, body: review({ uid: req.uid, allowed: true, patchType: 'JSONPatch', patch }), outcome: 'injected', message: r.reason };
  } catch (e) {
    if (!(e instanceof InjectionInputError)) throw e;
    const message = `meshpilot cannot inject this pod: ${e.message}`;
    return { status: 200, body: review({ uid: req.uid, allowed: false, status: { code: 400, reason: 'BadRequest', message } }), outcome: 'rejected', message };
  }
}
