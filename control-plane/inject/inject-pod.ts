// Builds the desired pod from the original: the same pod plus the redirect init container, the
// certificate agent, the Envoy sidecar, their volumes and an annotation saying it was injected.
// Never mutates its input; a pod that is already injected (or not selected) comes back as it is, so injecting twice equals injecting once.
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { INJECTED, InjectionInputError, parseOverrides } from './annotations.ts';
import type { InjectionConfig } from './config.ts';
import { initContainer } from './init-container.ts';
import { agentContainer, agentVolumes } from './agent-container.ts';
import { decide, type PodMeta } from './selection.ts';
import { proxyImage, sidecarContainer } from './sidecar-container.ts';

/** A Pod, or the pod template of a workload: what injection reads and changes. */
export interface PodLike {
  metadata?: PodMeta & Record<string, unknown>;
  spec?: IPodSpec;
  [k: string]: unknown;
}

export interface PodContext {
  namespace: string;
  namespaceLabels: Record<string, string>;
  /** Where the pod sits in its document, for error messages: [] for a Pod, ['spec','template'] for a Deployment. */
  path: (string | number)[];
}

export type InjectResult<T> = { injected: true; pod: T; reason: string } | { injected: false; pod: T; reason: string };

/** Throws InjectionInputError when the pod's labels, annotations or shape cannot be read. */
export function injectPod<T extends PodLike>(pod: T, ctx: PodContext, config: InjectionConfig): InjectResult<T> {
  const spec = pod.spec;
  if (!spec || typeof spec !== 'object' || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    throw new InjectionInputError([...ctx.path, 'spec', 'containers'], 'a pod needs at least one container');
  }
  const metadata = pod.metadata ?? {};
  const metaPath = [...ctx.path, 'metadata'];
  const decision = decide({ namespace: ctx.namespace, namespaceLabels: ctx.namespaceLabels, metadata, spec, metaPath }, config);
  if (!decision.inject) return { injected: false, pod, reason: decision.reason };
  const overrides = parseOverrides(metadata.annotations, metaPath);
  const labels = metadata.labels ?? {};
  const volumes = agentVolumes(config);
  const taken = (spec.volumes ?? []).find((v) => volumes.some((a) => a.name === v.name));
  if (taken) throw new InjectionInputError([...ctx.path, 'spec', 'volumes'], `volume name "${taken.name}" is reserved for the injected sidecar`);
  const desired = structuredClone(pod);
  desired.metadata = { ...desired.metadata, annotations: { ...metadata.annotations, [INJECTED]: proxyImage(config) } };
  desired.spec = {
    ...desired.spec!,
    // After the pod's own init containers: they ran before the mesh and keep working as they did.
    // The agent before Envoy: native sidecars start in order, and Envoy's secrets come from it.
    // A gateway (proxy-type router) captures no traffic: Envoy's own listeners are the workload.
    initContainers: [...(desired.spec!.initContainers ?? []), ...(overrides.proxyType === 'router' ? [] : [initContainer(config, overrides)]), agentContainer(config), sidecarContainer(config, labels, overrides)],
    volumes: [...(desired.spec!.volumes ?? []), ...volumes],
  };
  return { injected: true, pod: desired, reason: decision.reason };
}
