// CustomResourceDefinitions for every kind meshpilot accepts, generated from the same zod schemas
// the validator uses, so the API server and meshpilot agree on the shape. Kubernetes wants a
// structural OpenAPI v3 schema: every node typed, no $ref, no `additionalProperties: false`
// (unknown fields are pruned instead), no `additionalProperties` beside `properties`. Value checks
// the API server would do differently (JS regex patterns) are left to meshpilot's validator, whose
// verdict comes back as the object's Accepted condition.
import { stringify } from 'yaml';
import { z } from 'zod';
import { specSchemas } from '../config/schemas/index.ts';
import { RULE_RESOURCES, type RuleResource } from './rule-resources.ts';

type Schema = { [k: string]: unknown };

const DROPPED = new Set(['$schema', 'pattern', 'format', 'id', '$id']);

/** zod's OpenAPI 3.0 output -> a structural schema (see the file comment). */
export function structural(node: unknown): Schema {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return {};
  const input = node as Schema;
  const out: Schema = {};
  const anyOf = input['anyOf'] as Schema[] | undefined;
  if (anyOf) {
    const types = new Set(anyOf.map((b) => b['type']));
    if (types.size === 2 && types.has('string') && (types.has('number') || types.has('integer'))) return { 'x-kubernetes-int-or-string': true };
    // No other unions occur in our schemas; keep whatever is there rather than guess.
    return { 'x-kubernetes-preserve-unknown-fields': true };
  }
  for (const [k, v] of Object.entries(input)) {
    if (DROPPED.has(k)) continue;
    if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, structural(s)]));
    else if (k === 'items') out[k] = structural(v);
    else if (k === 'additionalProperties') {
      if (typeof v === 'object' && !input['properties']) out[k] = structural(v);
    } else out[k] = v;
  }
  if (out['type'] === undefined && !out['x-kubernetes-int-or-string']) out['x-kubernetes-preserve-unknown-fields'] = true;
  return out;
}

/** Why a schema is not structural, as paths; empty when it is. */
export function structuralProblems(s: unknown, path = ''): string[] {
  if (!s || typeof s !== 'object') return [];
  const n = s as Schema;
  const out: string[] = [];
  if (n['$ref'] !== undefined) out.push(`${path}: $ref`);
  if (n['anyOf'] || n['oneOf'] || n['allOf']) out.push(`${path}: union`);
  if (n['additionalProperties'] === false) out.push(`${path}: additionalProperties false`);
  if (n['additionalProperties'] !== undefined && n['properties'] !== undefined) out.push(`${path}: additionalProperties with properties`);
  if (n['type'] === undefined && !n['x-kubernetes-int-or-string'] && !n['x-kubernetes-preserve-unknown-fields']) out.push(`${path}: no type`);
  for (const [p, c] of Object.entries((n['properties'] as Schema | undefined) ?? {})) out.push(...structuralProblems(c, `${path}.${p}`));
  if (n['items']) out.push(...structuralProblems(n['items'], `${path}[]`));
  if (typeof n['additionalProperties'] === 'object') out.push(...structuralProblems(n['additionalProperties'], `${path}{}`));
  return out;
}

const STATUS: Schema = {
  type: 'object',
  description: 'Written by meshpilot: an Accepted condition, False with the field path and message of each problem.',
  properties: {
    conditions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'status'],
        properties: {
          type: { type: 'string' },
          status: { type: 'string' },
          reason: { type: 'string' },
          message: { type: 'string' },
          observedGeneration: { type: 'integer' },
          lastTransitionTime: { type: 'string' },
        },
      },
    },
  },
};

export function crdFor(r: RuleResource): Schema {
  const spec = structural(z.toJSONSchema(specSchemas[r.kind], { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }));
  // The leader keeps a Canary's or FaultExperiment's rollout state in its status (rollout/kube-store.ts),
  // beside the Accepted condition: kept, not pruned, by the API server.
  const status = r.kind === 'Canary' || r.kind === 'FaultExperiment' ? { ...STATUS, 'x-kubernetes-preserve-unknown-fields': true } : STATUS;
  const schema = { openAPIV3Schema: { type: 'object', properties: { spec, status } } };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${r.plural}.${r.group}`, labels: { 'app.kubernetes.io/part-of': 'meshpilot' } },
    spec: {
      group: r.group,
      names: { kind: r.kind, listKind: `${r.kind}List`, plural: r.plural, singular: r.singular, ...(r.shortNames ? { shortNames: r.shortNames } : {}), categories: r.categories },
      scope: 'Namespaced',
      versions: r.served.map((name) => ({ name, served: true, storage: name === r.version, subresources: { status: {} }, schema })),
    },
  };
}

/** The whole examples/kubernetes/install/base/crds.yaml text. */
export function crdsYaml(): string {
  const header = '# Generated by `npm run crds` from the zod schemas in control-plane/config/schemas/. Do not edit.\n';
  return header + RULE_RESOURCES.map((r) => stringify(crdFor(r), { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}
