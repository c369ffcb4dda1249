// examples/kubernetes/remote-cluster-reader.yaml: valid Kubernetes objects, and the read-only
// identity a remote cluster gives meshpilot: list/watch of what becomes services and endpoints.
// The install itself (examples/kubernetes/install) is checked by test/kube-install.test.ts.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { kubernetesProblems } from './helpers/k8s-schema.ts';

type Obj = { kind: string; metadata: { name: string; namespace?: string }; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };

const docs = parseAllDocuments(readFileSync(new URL('../examples/kubernetes/remote-cluster-reader.yaml', import.meta.url), 'utf8')).map((d) => d.toJS() as Obj);

/** Every (group, resource, verb) a role grants. */
function grants(role: Obj): Set<string> {
  const out = new Set<string>();
  for (const r of role.rules ?? []) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) out.add(`${g}/${res}:${v}`);
  return out;
}

describe('examples/kubernetes/remote-cluster-reader.yaml', () => {
  it('every object passes the Kubernetes schema', () => {
    for (const o of docs) expect(kubernetesProblems(o), `${o.kind} ${o.metadata.name}`).toEqual([]);
  });

  it('grants list/watch of services, pods, nodes and endpointslices only', () => {
    const role = docs.find((o) => o.kind === 'ClusterRole')!;
    expect([...grants(role)].sort()).toEqual(['/nodes:list', '/nodes:watch', '/pods:list', '/pods:watch', '/services:list', '/services:watch', 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
  });
});
