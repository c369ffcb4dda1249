// Which pods get a sidecar. The pod's own choice wins over its namespace's; some pods never get one.
import type { IPodSpec as PodSpec } from 'kubernetes-models/v1/PodSpec';
import { checkKnownKeys, INJECT, InjectionInputError } from './annotations.ts';
import type { InjectionConfig } from './config.ts';
import { AGENT_CONTAINER, INIT_CONTAINER, PROXY_CONTAINER } from './names.ts';

export type Decision = { inject: true; reason: string } | { inject: false; reason: string };

export interface PodMeta {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface SelectionInput {
  namespace: string;
  /** The namespace's labels. */
  namespaceLabels: Record<string, string>;
  metadata: PodMeta;
  spec: PodSpec;
  /** Path of the pod metadata in the document, for error messages (e.g. spec.template.metadata). */
  metaPath: (string | number)[];
}

export function isInjected(spec: PodSpec): boolean {
  const names = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].map((c) => c.name);
  return names.includes(PROXY_CONTAINER) || names.includes(INIT_CONTAINER) || names.includes(AGENT_CONTAINER);
}

function podChoice(meta: PodMeta, metaPath: (string | number)[]): boolean | undefined {
  checkKnownKeys(meta.labels, [...metaPath, 'labels']);
  const read = (where: 'labels' | 'annotations'): boolean | undefined => {
    const v = meta[where]?.[INJECT];
    if (v === undefined) return undefined;
    if (v === 'true' || v === 'false') return v === 'true';
    throw new InjectionInputError([...metaPath, where, INJECT], `expected "true" or "false", got ${JSON.stringify(v)}`);
  };
  const label = read('labels');
  const annotation = read('annotations');
  if (label !== undefined && annotation !== undefined && label !== annotation) {
    throw new InjectionInputError([...metaPath, 'annotations', INJECT], `says ${annotation} but the label ${INJECT} says ${label}; set one of them`);
  }
  return label ?? annotation;
}

function namespaceChoice(namespace: string, labels: Record<string, string>): boolean | undefined {
  const v = labels[INJECT];
  if (v === undefined) return undefined;
  if (v === 'enabled' || v === 'disabled') return v === 'enabled';
  throw new InjectionInputError(['namespace', namespace, 'labels', INJECT], `expected "enabled" or "disabled", got ${JSON.stringify(v)}`);
}

/** Throws InjectionInputError for a label or annotation value it cannot read. */
export function decide(input: SelectionInput, config: InjectionConfig): Decision {
  if (config.selection.neverNamespaces.includes(input.namespace)) return { inject: false, reason: `namespace ${input.namespace} is never injected` };
  const pod = podChoice(input.metadata, input.metaPath);
  const ns = namespaceChoice(input.namespace, input.namespaceLabels);
  // The host's network namespace is shared with the node: redirecting it would capture the node.
  if (input.spec.hostNetwork) return { inject: false, reason: 'the pod uses the host network' };
  if (isInjected(input.spec)) return { inject: false, reason: 'the pod already has a sidecar' };
  if (pod !== undefined) return { inject: pod, reason: `the pod's ${INJECT} is ${pod}` };
  if (ns !== undefined) return { inject: ns, reason: `namespace ${input.namespace} has ${INJECT}=${ns ? 'enabled' : 'disabled'}` };
  return { inject: false, reason: `neither the pod nor namespace ${input.namespace} opts in` };
}
