// Kubernetes objects for running backends, as a cluster would hold them: a Node with topology
// labels, a Service, and per backend a Pod (labels app/version) and an EndpointSlice pointing at
// it (one slice per backend, since every backend listens on its own port of 127.0.0.1).
import { KubeConfig } from '@kubernetes/client-node';
import type { ClusterRegistration } from '../../control-plane/kube/cluster.ts';
import type { BackendInfo } from './backends.ts';
import type { FakeApiServer, KubeObject } from './fake-apiserver.ts';
import { PORT_NAME, SERVICE_PORT } from './mesh-files.ts';

export function nodeObject(name: string, region: string, zone: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'topology.kubernetes.io/region': region, 'topology.kubernetes.io/zone': zone } } };
}

export function serviceObject(service: string, namespace = 'default'): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: service, namespace }, spec: { ports: [{ name: PORT_NAME, port: SERVICE_PORT, protocol: 'TCP' }] } };
}

/** The Pod and EndpointSlice of one backend (named after the backend's port, so unique per test). */
export function backendObjects(b: BackendInfo, node: string, namespace = 'default'): { pod: KubeObject; slice: KubeObject } {
  const pod = `${b.service}-${b.version}-${b.port}`;
  return {
    pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: pod, namespace, labels: { app: b.service, version: b.version } }, spec: { nodeName: node, serviceAccountName: b.service } },
    slice: {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${b.service}-${b.port}`, namespace, labels: { 'kubernetes.io/service-name': b.service } },
      addressType: 'IPv4',
      ports: [{ name: PORT_NAME, port: b.port, protocol: 'TCP' }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true }, nodeName: node, targetRef: { kind: 'Pod', name: pod, namespace } }],
    },
  };
}

export function applyBackend(api: FakeApiServer, b: BackendInfo, node: string): void {
  const { pod, slice } = backendObjects(b, node);
  api.apply(pod);
  api.apply(slice);
}

export function removeBackend(api: FakeApiServer, b: BackendInfo): void {
  api.remove('discovery.k8s.io/v1', 'EndpointSlice', 'default', `${b.service}-${b.port}`);
  api.remove('v1', 'Pod', 'default', `${b.service}-${b.version}-${b.port}`);
}

export function registration(api: FakeApiServer, extra: Partial<ClusterRegistration> = {}): ClusterRegistration {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  return { name: api.name, kubeConfig, origin: `test ${api.name}`, ...extra };
}

export function istio(kind: string, name: string, spec: unknown, apiVersion = 'networking.istio.io/v1'): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: 'default' }, spec };
}
