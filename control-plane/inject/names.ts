// Names of what injection adds, shared by the builders and by the "already injected" check.
export const PROXY_CONTAINER = 'meshpilot-proxy';
export const INIT_CONTAINER = 'meshpilot-init';

/** Environment variables filled from the downward API, expanded by Kubernetes in Envoy's args. */
export const DOWNWARD_ENV = {
  podIp: { name: 'MESHPILOT_POD_IP', fieldPath: 'status.podIP' },
  podName: { name: 'MESHPILOT_POD_NAME', fieldPath: 'metadata.name' },
  podNamespace: { name: 'MESHPILOT_POD_NAMESPACE', fieldPath: 'metadata.namespace' },
  serviceAccount: { name: 'MESHPILOT_SERVICE_ACCOUNT', fieldPath: 'spec.serviceAccountName' },
} as const;
export type DownwardVar = keyof typeof DOWNWARD_ENV;
