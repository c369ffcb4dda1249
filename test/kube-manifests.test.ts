// examples/kubernetes/: the manifests are valid Kubernetes objects (kubernetes-models' schemas),
// the CRDs too, and the RBAC grants exactly what the Kubernetes source uses: list/watch of what it
// reads, patch of its kinds' status, Secrets only in its own namespace, and what the mesh CA needs
// (TokenReview; Namespaces and ConfigMaps for its trust bundle ConfigMap).
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { RULE_RESOURCES } from '../control-plane/kube/rule-resources.ts';
import { XDS_SERVER_NAMES } from '../control-plane/ca/tls-credentials.ts';

type Obj = { kind: string; metadata: { name: string; namespace?: string }; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };

function docs(file: string): Obj[] {
  return parseAllDocuments(readFileSync(new URL(`../examples/kubernetes/${file}`, import.meta.url), 'utf8')).map((d) => d.toJS() as Obj);
}

const MODELS: Record<string, new (o: never) => { validate(): void }> = { ClusterRole, ClusterRoleBinding, Role, RoleBinding, Deployment, Service, ServiceAccount, Namespace, Secret, CustomResourceDefinition };

/** Every (group, resource, verb) a role grants. */
function grants(role: Obj): Set<string> {
  const out = new Set<string>();
  for (const r of role.rules ?? []) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) out.add(`${g}/${res}:${v}`);
  return out;
}

describe('examples/kubernetes', () => {
  it('every object passes the Kubernetes schema', () => {
    const all = [...docs('control-plane.yaml'), ...docs('crds.yaml'), ...docs('remote-cluster-reader.yaml')];
    for (const o of all) {
      const Model = MODELS[o.kind];
      expect(Model, o.kind).toBeDefined();
      expect(() => new Model!(o as never).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
    }
  });

  it('RBAC: list/watch of what is read, patch of our status, the CA\'s TokenReview and trust bundle ConfigMaps, Secrets only in our namespace, nothing else', () => {
    const objs = docs('control-plane.yaml');
    const cluster = grants(objs.find((o) => o.kind === 'ClusterRole')!);
    const expected = new Set<string>();
    for (const r of ['/services', '/pods', '/nodes', 'discovery.k8s.io/endpointslices']) for (const v of ['list', 'watch']) expected.add(`${r}:${v}`);
    for (const r of RULE_RESOURCES) {
      expected.add(`${r.group}/${r.plural}:list`);
      expected.add(`${r.group}/${r.plural}:watch`);
      expected.add(`${r.group}/${r.plural}/status:patch`);
    }
    // The mesh CA checks agents' ServiceAccount tokens with TokenReview.
    expected.add('authentication.k8s.io/tokenreviews:create');
    // ...and publishes its trust bundle as a ConfigMap in every namespace (ca/root-publisher.ts):
    // it watches Namespaces and that ConfigMap, creates it and replaces it (never deletes or patches).
    for (const v of ['get', 'list', 'watch']) expected.add(`/namespaces:${v}`);
    for (const v of ['get', 'list', 'watch', 'create', 'update']) expected.add(`/configmaps:${v}`);
    expect([...cluster].sort()).toEqual([...expected].sort());
    expect(cluster.has('authentication.k8s.io/tokenreviews:create')).toBe(true);
    const role = objs.find((o) => o.kind === 'Role')!;
    expect(role.metadata.namespace).toBe('meshpilot-system');
    // Cluster-registration Secrets read; the CA root's Secret read and created; the leader's Lease.
    expect([...grants(role)].sort()).toEqual(['/secrets:create', '/secrets:get', '/secrets:list', '/secrets:update', '/secrets:watch', 'coordination.k8s.io/leases:create', 'coordination.k8s.io/leases:get', 'coordination.k8s.io/leases:update']);
  });

  it('serve runs the mesh CA (--xds-tls) on the port and at the name the injected agent dials', () => {
    const objs = docs('control-plane.yaml');
    const deploy = objs.find((o) => o.kind === 'Deployment') as unknown as { metadata: { namespace: string }; spec: { template: { spec: { containers: Array<{ args: string[]; ports: Array<{ name: string; containerPort: number }> }> } } } };
    const container = deploy.spec.template.spec.containers[0]!;
    const args = container.args;
    expect(args[0]).toBe('serve');
    expect(args).toContain('--xds-tls');
    expect(args).toContain('--ca-token-audience=meshpilot-ca');
    const injection = parse(readFileSync(new URL('../sidecar-config/injection.yaml', import.meta.url), 'utf8')) as { agent: { tokenAudience: string }; xds: { address: string; port: number; caPort: number } };
    expect(injection.agent.tokenAudience).toBe('meshpilot-ca');
    // The agent dials <service>.<namespace>.svc.<domain>:<port>: that Service, that port, the xDS listener behind it.
    const [svcName, svcNamespace] = injection.xds.address.split('.');
    const svc = objs.find((o) => o.kind === 'Service') as unknown as { metadata: { name: string; namespace: string }; spec: { ports: Array<{ port: number; targetPort: string }> } };
    expect([svc.metadata.name, svc.metadata.namespace]).toEqual([svcName, svcNamespace]);
    // Envoy's plaintext xDS port and the agent's TLS port (xDS + CA) are both that Service's.
    const targetOf = (n: number) => {
      const port = svc.spec.ports.find((p) => p.port === n)!;
      expect(port, String(n)).toBeDefined();
      return container.ports.find((p) => p.name === port.targetPort)!.containerPort;
    };
    expect(args).toContain(`--xds-listen=0.0.0.0:${targetOf(injection.xds.caPort)}`);
    expect(args).toContain(`--xds-plaintext-listen=0.0.0.0:${targetOf(injection.xds.port)}`);
    // The CA's serving certificate names what the agent checks (the host it dials).
    expect(XDS_SERVER_NAMES.dnsNames).toContain(injection.xds.address);
  });

  it('remote clusters: list/watch of services, pods, nodes and endpointslices only', () => {
    const role = docs('remote-cluster-reader.yaml').find((o) => o.kind === 'ClusterRole')!;
    expect([...grants(role)].sort()).toEqual(['/nodes:list', '/nodes:watch', '/pods:list', '/pods:watch', '/services:list', '/services:watch', 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
  });
});
