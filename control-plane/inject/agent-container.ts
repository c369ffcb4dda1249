// `meshpilot agent` as a native sidecar placed before Envoy. It shares the run volume with Envoy
// and nothing else: the key stays in the pod. Same UID as Envoy: its traffic to the CA bypasses
// the redirect, and Envoy can use the socket it creates.
//
// Its startup probe passes only once the agent holds its first workload certificate (GET
// /healthz/ready on ports.agentHealth, served after the SDS socket is up), and the kubelet starts
// the next native sidecar, Envoy, only after that. Envoy would cope without it (it retries SDS,
// and its xDS cluster's TLS handshakes, with backoff), so what the order buys is a clean start:
// Envoy's first SDS request is answered at once, its first ADS connection to meshpilot's TLS port
// presents a certificate and succeeds, instead of failing until a later retry (backoff delays and
// error logs in Envoy for what is only the agent still starting). A pod whose agent cannot get a
// certificate (CA unreachable, token refused) stops at the agent, whose probe and logs say why,
// rather than at an Envoy that cannot reach xDS.
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { InjectionConfig } from './config.ts';
import { AGENT_CONTAINER, AGENT_READY_PATH, CERTS_DIR, DOWNWARD_ENV, SDS_SOCKET, VOLUMES } from './names.ts';

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
      // All interfaces: the kubelet probes the pod IP (the redirect leaves this port alone).
      '--ready-listen', `0.0.0.0:${config.ports.agentHealth}`,
    ],
    // --namespace and --service-account come from these (the agent reads them itself).
    env: [DOWNWARD_ENV.podNamespace, DOWNWARD_ENV.serviceAccount].map((v) => ({ name: v.name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: v.fieldPath } } })),
    resources: { requests: { ...a.resources.requests }, limits: { ...a.resources.limits } },
    volumeMounts: [
      { name: VOLUMES.run.name, mountPath: VOLUMES.run.mountPath },
      { name: VOLUMES.token.name, mountPath: VOLUMES.token.mountPath, readOnly: true },
      { name: VOLUMES.caRoot.name, mountPath: VOLUMES.caRoot.mountPath, readOnly: true },
    ],
    // Up to 10 minutes for the first certificate (the agent retries the CA with backoff meanwhile);
    // after that the kubelet restarts the agent. Once it has passed it is not run again for the
    // container's life (a renewal failure later does not stop Envoy).
    startupProbe: { httpGet: { path: AGENT_READY_PATH, port: config.ports.agentHealth }, periodSeconds: 1, failureThreshold: 600 },
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
