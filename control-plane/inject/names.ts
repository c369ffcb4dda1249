// Names of what injection adds, shared by the builders and by the "already injected" check.
export const PROXY_CONTAINER = 'meshpilot-proxy';
export const INIT_CONTAINER = 'meshpilot-init';
export const AGENT_CONTAINER = 'meshpilot-agent';

/** Pod volumes injection adds, and where the containers mount them. */
export const VOLUMES = {
  // emptyDir shared by the agent and Envoy: the SDS socket and the certificate files.
  run: { name: 'meshpilot-run', mountPath: '/var/run/meshpilot' },
  // Projected ServiceAccount token for the CA (its own audience, rotated by the kubelet).
  token: { name: 'meshpilot-token', mountPath: '/var/run/secrets/meshpilot/tokens', file: 'meshpilot-ca' },
  // The CA's root, to trust its serving certificate.
  caRoot: { name: 'meshpilot-ca-root', mountPath: '/var/run/secrets/meshpilot/ca', file: 'root-cert.pem' },
} as const;
export const SDS_SOCKET = `${VOLUMES.run.mountPath}/sds.sock`;
export const CERTS_DIR = `${VOLUMES.run.mountPath}/certs`;
/** The agent's readiness path (control-plane/agent/ready-server.ts serves it). */
export { AGENT_READY_PATH } from '../agent/ready-server.ts';

/** Environment variables filled from the downward API, expanded by Kubernetes in Envoy's args. */
export const DOWNWARD_ENV = {
  podIp: { name: 'MESHPILOT_POD_IP', fieldPath: 'status.podIP' },
  podName: { name: 'MESHPILOT_POD_NAME', fieldPath: 'metadata.name' },
  podNamespace: { name: 'MESHPILOT_POD_NAMESPACE', fieldPath: 'metadata.namespace' },
  serviceAccount: { name: 'MESHPILOT_SERVICE_ACCOUNT', fieldPath: 'spec.serviceAccountName' },
} as const;
export type DownwardVar = keyof typeof DOWNWARD_ENV;
