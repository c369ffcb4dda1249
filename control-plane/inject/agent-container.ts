// `meshpilot agent` as a native sidecar placed before Envoy, so the SDS socket is there (or soon
// is) when Envoy starts. It shares the run volume with Envoy and nothing else: the key stays in
// the pod. Same UID as Envoy: its traffic to the CA bypasses the redirect, and Envoy can use the
// socket it creates.
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { InjectionConfig } from './config.ts';
import { AGENT_CONTAINER, CERTS_DIR, DOWNWARD_ENV, SDS_SOCKET, VOLUMES } from './names.ts';

export function agentImage(config: InjectionConfig): string {
  return `${config.agent.image}:${config.agent.version}`;
}

export function agentContainer(config: InjectionConfig): IContainer {
  const a = config.agent;
  const uid = config.proxy.uid;
  return {
    name: AGENT_CONTAINER,
    image: agentImage(config),
    restartPolicy: 'Always',
    args: [
      'agent',
      // The CA is served on meshpilot's TLS xDS port.
      '--ca-address', `${config.xds.address}:${config.xds.caPort}`,
      '--ca-root', `${VOLUMES.caRoot.mountPath}/${VOLUMES.caRoot.file}`,
      '--token-file', `${VOLUMES.token.mountPath}/${VOLUMES.token.file}`,
      '--trust-domain', a.trustDomain,
      '--out-dir', CERTS_DIR,
      '--sds-socket', SDS_SOCKET,
    ],
    // --namespace and --service-account come from these (the agent reads them itself).
    env: [DOWNWARD_ENV.podNamespace, DOWNWARD_ENV.serviceAccount].map((v) => ({ name: v.name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: v.fieldPath } } })),
    resources: { requests: { ...a.resources.requests }, limits: { ...a.resources.limits } },
    volumeMounts: [
      { name: VOLUMES.run.name, mountPath: VOLUMES.run.mountPath },
      { name: VOLUMES.token.name, mountPath: VOLUMES.token.mountPath, readOnly: true },
      { name: VOLUMES.caRoot.name, mountPath: VOLUMES.caRoot.mountPath, readOnly: true },
    ],
    securityContext: {
      runAsUser: uid,
      runAsGroup: uid,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    },
  };
}

/** The volumes the agent and Envoy mount. */
export function agentVolumes(config: InjectionConfig): IVolume[] {
  const a = config.agent;
  return [
    // Memory-backed: the private key never touches the node's disk.
    { name: VOLUMES.run.name, emptyDir: { medium: 'Memory' } },
    {
      name: VOLUMES.token.name,
      projected: { sources: [{ serviceAccountToken: { audience: a.tokenAudience, expirationSeconds: a.tokenExpirationSeconds, path: VOLUMES.token.file } }] },
    },
    { name: VOLUMES.caRoot.name, configMap: { name: a.caRootConfigMap, items: [{ key: VOLUMES.caRoot.file, path: VOLUMES.caRoot.file }] } },
  ];
}
