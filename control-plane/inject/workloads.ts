// Where the pod is in each kind of object `meshpilot inject` accepts. Other kinds pass unchanged.
import type { Json } from '../json.ts';
import type { InjectionConfig } from './config.ts';
import { injectPod, type PodLike } from './inject-pod.ts';

const TEMPLATE_PATHS: Record<string, string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export const INJECTABLE_KINDS = Object.keys(TEMPLATE_PATHS);

export interface ObjectReport {
  /** Kind namespace/name, e.g. "Deployment default/reviews". */
  object: string;
  injected: boolean;
  reason: string;
}

export interface WorkloadOptions {
  /** Namespace for objects that do not name one. */
  defaultNamespace: string;
  namespaceLabels: (namespace: string) => Record<string, string>;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function getAt(o: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>((v, k) => (isObj(v) || Array.isArray(v) ? (v as Json)[k as string] : undefined), o);
}

function setAt(o: Json, path: string[], value: unknown): Json {
  if (path.length === 0) return value as Json;
  const [k, ...rest] = path as [string, ...string[]];
  return { ...o, [k]: setAt((o[k] ?? {}) as Json, rest, value) };
}

/**
 * Injects the pod (template) of one object. `base` is the object's path in its document (a List's
 * items), so errors point into the file. Throws InjectionInputError on unreadable input.
 */
export function injectObject(obj: unknown, opts: WorkloadOptions, config: InjectionConfig, base: (string | number)[] = []): { object: unknown; reports: ObjectReport[] } {
  if (!isObj(obj)) return { object: obj, reports: [] };
  if (obj.kind === 'List' && Array.isArray(obj.items)) {
    const reports: ObjectReport[] = [];
    const items = obj.items.map((item, i) => {
      const r = injectObject(item, opts, config, [...base, 'items', i]);
      reports.push(...r.reports);
      return r.object;
    });
    return { object: { ...obj, items }, reports };
  }
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  const templatePath = TEMPLATE_PATHS[kind];
  if (!templatePath) return { object: obj, reports: [] };
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : opts.defaultNamespace;
  const name = `${kind} ${namespace}/${typeof meta.name === 'string' ? meta.name : String(meta.generateName ?? '')}`;
  const pod = getAt(obj, templatePath) as PodLike | undefined;
  const r = injectPod(pod ?? {}, { namespace, namespaceLabels: opts.namespaceLabels(namespace), path: [...base, ...templatePath] }, config);
  return { object: r.injected ? setAt(obj, templatePath, r.pod) : obj, reports: [{ object: name, injected: r.injected, reason: r.reason }] };
}
