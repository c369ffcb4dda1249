// The CRDs shipped in examples/kubernetes/install/base/ are generated from the validator's zod schemas, are
// structural (what the API server requires), and keep every field of real rules: the API server
// prunes fields a structural schema does not declare, which would silently change a rule.
import { readFileSync, readdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { crdFor, crdsYaml, structuralProblems } from '../control-plane/kube/crds.ts';
import { RULE_RESOURCES } from '../control-plane/kube/rule-resources.ts';

type Schema = Record<string, unknown>;

/** What the API server keeps of `value` under a structural schema (its pruning rule). */
function prune(value: unknown, s: Schema): unknown {
  if (s['x-kubernetes-preserve-unknown-fields'] || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => prune(v, (s['items'] as Schema) ?? {}));
  const props = s['properties'] as Record<string, Schema> | undefined;
  const extra = s['additionalProperties'] as Schema | undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (props?.[k]) out[k] = prune(v, props[k]!);
    else if (extra) out[k] = prune(v, extra);
  }
  return out;
}

describe('CRDs', () => {
  it('examples/kubernetes/install/base/crds.yaml is the generated output (run `npm run crds` after changing a schema)', () => {
    expect(readFileSync(new URL('../examples/kubernetes/install/base/crds.yaml', import.meta.url), 'utf8')).toBe(crdsYaml());
  });

  it('one CRD per kind, Istio groups for Istio kinds, one storage version, status subresource, structural schemas', () => {
    const docs = parseAllDocuments(crdsYaml()).map((d) => d.toJS() as { metadata: { name: string }; spec: { versions: Array<{ name: string; storage: boolean; subresources: unknown; schema: { openAPIV3Schema: unknown } }> } });
    expect(docs.map((d) => d.metadata.name)).toEqual([
      'virtualservices.networking.istio.io',
      'destinationrules.networking.istio.io',
      'serviceentries.networking.istio.io',
      'workloadentries.networking.istio.io',
      'sidecars.networking.istio.io',
      'authorizationpolicies.security.istio.io',
      'peerauthentications.security.istio.io',
      'requestauthentications.security.istio.io',
      'gateways.networking.istio.io',
      'ratelimits.traffic.meshpilot.io',
      'canaries.traffic.meshpilot.io',
      'faultexperiments.traffic.meshpilot.io',
    ]);
    for (const d of docs) {
      expect(d.spec.versions.filter((v) => v.storage).length, d.metadata.name).toBe(1);
      for (const v of d.spec.versions) {
        expect(v.subresources).toEqual({ status: {} });
        expect(structuralProblems(v.schema.openAPIV3Schema), `${d.metadata.name} ${v.name}`).toEqual([]);
      }
    }
    expect(docs[0]!.spec.versions.map((v) => `${v.name}${v.storage ? '*' : ''}`)).toEqual(['v1*', 'v1beta1', 'v1alpha3']);
  });

  it('the structural check finds what the API server would refuse', () => {
    expect(structuralProblems({ type: 'object', properties: { a: { type: 'object', additionalProperties: false, properties: { b: {} } } } })).toEqual(['.a: additionalProperties false', '.a: additionalProperties with properties', '.a.b: no type']);
  });

  it('no field of the golden and example rules is pruned by the CRD schemas', () => {
    const dirs = [new URL('./golden/in/', import.meta.url), new URL('../examples/bookinfo/', import.meta.url), new URL('../examples/canary/', import.meta.url), new URL('../examples/canary-fault/', import.meta.url), new URL('./fixtures/config/valid/', import.meta.url)];
    let checked = 0;
    for (const dir of dirs) {
      const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.ya?ml$/.test(f));
      for (const f of files) {
        for (const doc of parseAllDocuments(readFileSync(new URL(f, dir), 'utf8'))) {
          const o = doc.toJS() as { kind?: string; spec?: unknown } | null;
          const r = RULE_RESOURCES.find((x) => x.kind === o?.kind);
          if (!r || o?.spec === undefined) continue;
          const schema = (crdFor(r)['spec'] as { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: Schema } } } }> }).versions[0]!.schema.openAPIV3Schema.properties.spec;
          expect(prune(o.spec, schema), `${f} ${o.kind}`).toEqual(o.spec);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
  });
});
