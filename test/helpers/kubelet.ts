// What the kubelet does to an injected container before it runs: environment variables from the
// downward API get the pod's values, and $(VAR) references in args are expanded (Kubernetes rules:
// $$ is a literal $, a reference to an undefined variable stays as written).
import type { IContainer } from 'kubernetes-models/v1/Container';

export interface PodFacts {
  ip: string;
  name: string;
  namespace: string;
  serviceAccount: string;
}

export function kubeletExpand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name?: string) => {
    if (m === '$$') return '$';
    return name !== undefined && env[name] !== undefined ? env[name] : m;
  });
}

export function containerEnv(c: IContainer, pod: PodFacts): Record<string, string> {
  const fields: Record<string, string> = {
    'status.podIP': pod.ip,
    'metadata.name': pod.name,
    'metadata.namespace': pod.namespace,
    'spec.serviceAccountName': pod.serviceAccount,
  };
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const path = e.valueFrom?.fieldRef?.fieldPath;
    if (e.value !== undefined) env[e.name] = kubeletExpand(e.value, env);
    else if (path !== undefined) {
      if (!(path in fields)) throw new Error(`env ${e.name}: downward API field ${path} not simulated`);
      env[e.name] = fields[path]!;
    }
  }
  return env;
}

/** The container's args as the process would see them. */
export function expandedArgs(c: IContainer, pod: PodFacts): string[] {
  const env = containerEnv(c, pod);
  return (c.args ?? []).map((a) => kubeletExpand(a, env));
}
