// The Envoy sidecar, as a Kubernetes native sidecar (an init container with restartPolicy Always):
// it starts before the app containers and, thanks to its startup probe, they start only once Envoy
// has its config; it stops only after they have exited, so the app drains its in-flight requests
// through a live proxy, and Jobs still complete. Needs Kubernetes 1.29 or later.
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { PodOverrides } from './annotations.ts';
import { bootstrapArg, READY_PATH } from './bootstrap.ts';
import type { InjectionConfig } from './config.ts';
import { DOWNWARD_ENV, PROXY_CONTAINER, VOLUMES } from './names.ts';

export function proxyImage(config: InjectionConfig): string {
  return `${config.proxy.image}:${config.proxy.version}`;
}

export function sidecarContainer(config: InjectionConfig, labels: Record<string, string>, overrides: PodOverrides): IContainer {
  const p = config.proxy;
  const probe = { httpGet: { path: READY_PATH, port: config.ports.health } };
  return {
    name: PROXY_CONTAINER,
    image: proxyImage(config),
    restartPolicy: 'Always',
    command: ['envoy'],
    args: [
      '--config-yaml', bootstrapArg(config, { labels, ...(overrides.proxyType === 'router' ? { nodeType: 'router' as const } : {}) }),
      '--log-level', overrides.logLevel ?? p.logLevel,
      '--concurrency', String(p.concurrency),
      '--drain-time-s', String(p.drainSeconds),
    ],
    env: Object.values(DOWNWARD_ENV).map((v) => ({ name: v.name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: v.fieldPath } } })),
    resources: {
      requests: { ...p.resources.requests, ...overrides.requests },
      limits: { ...p.resources.limits, ...overrides.limits },
    },
    // The SDS socket (the agent's certificates reach Envoy only through it).
    volumeMounts: [{ name: VOLUMES.run.name, mountPath: VOLUMES.run.mountPath }],
    startupProbe: { ...probe, periodSeconds: 1, failureThreshold: 600 },
    readinessProbe: { ...probe, periodSeconds: p.readiness.periodSeconds, failureThreshold: p.readiness.failureThreshold },
    securityContext: {
      runAsUser: p.uid,
      runAsGroup: p.uid,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    },
  };
}
