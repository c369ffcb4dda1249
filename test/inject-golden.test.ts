// Injection golden files: test/golden-inject/in/<case>.yaml -> out/<case>.yaml (what
// `meshpilot inject` prints) and out/<case>.report.txt (what it decided for each object and why),
// or out/<case>.error.txt when the input is rejected. UPDATE_GOLDEN=1 rewrites the outputs and
// deletes orphans. Every output object must pass the Kubernetes schema check, and for every pod the
// webhook's JSON Patch applied to the input must give exactly the golden output pod.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { INJECT } from '../control-plane/inject/annotations.ts';
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { injectYaml } from '../control-plane/inject/documents.ts';
import { applyPatch, type JsonPatch } from '../control-plane/inject/patch.ts';
import { answerReview } from '../control-plane/webhook/admission.ts';
import { kubernetesProblems } from './helpers/k8s-schema.ts';

const DIR = path.join('test', 'golden-inject');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const config = loadInjectionConfig();
const OFFLINE = { defaultNamespace: 'default', namespaceLabels: () => ({ [INJECT]: 'enabled' }) };

const cases = fs.readdirSync(path.join(DIR, 'in')).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).sort();

function golden(file: string, actual: string): void {
  const full = path.join(DIR, 'out', file);
  if (UPDATE || !fs.existsSync(full)) {
    fs.writeFileSync(full, actual);
    if (!UPDATE) throw new Error(`golden file ${full} was missing; it has been written, check it in`);
    return;
  }
  expect(actual, `${full} differs (UPDATE_GOLDEN=1 npx vitest run test/inject-golden.test.ts if intended)`).toBe(fs.readFileSync(full, 'utf8'));
}

const docsOf = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as Record<string, any>).filter((d) => d);

describe('injection golden files', () => {
  for (const c of cases) {
    it(c, async () => {
      const file = path.join(DIR, 'in', `${c}.yaml`);
      const text = fs.readFileSync(file, 'utf8');
      // A case's outputs are rewritten as a set (it may have turned from an error into a result).
      if (UPDATE) for (const f of fs.readdirSync(path.join(DIR, 'out'))) if (f.startsWith(`${c}.`)) fs.unlinkSync(path.join(DIR, 'out', f));
      let result;
      try {
        result = injectYaml(file, text, OFFLINE, config);
      } catch (e) {
        golden(`${c}.error.txt`, `${(e as Error).message}\n`);
        return;
      }
      golden(`${c}.yaml`, result.output);
      golden(`${c}.report.txt`, result.reports.map((r) => `${r.injected ? 'injected' : 'skipped '} ${r.object}: ${r.reason}`).join('\n') + '\n');

      const inputs = docsOf(text);
      const outputs = docsOf(result.output);
      expect(outputs.length).toBe(inputs.length);
      const objects = outputs.flatMap((o) => (o.kind === 'List' ? o.items : [o]));
      for (const o of objects) expect(kubernetesProblems(o), `${o.kind} ${o.metadata?.name}`).toEqual([]);

      // Injecting the output again changes nothing.
      expect(injectYaml(file, result.output, OFFLINE, config).output).toBe(result.output);

      // The webhook's patch for each pod, applied to the input, is the golden output.
      const nsLabels = new Map(inputs.filter((d) => d.kind === 'Namespace').map((d) => [d.metadata.name, d.metadata.labels ?? {}]));
      for (const [i, pod] of inputs.entries()) {
        if (pod.kind !== 'Pod') continue;
        const namespace = pod.metadata.namespace;
        const answer = await answerReview(
          { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: `uid-${i}`, kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace, object: pod } },
          { config, namespaceLabels: async (ns) => nsLabels.get(ns) ?? { [INJECT]: 'enabled' } },
        );
        const response = (answer.body as { response: { uid: string; allowed: boolean; patch?: string } }).response;
        expect(response.uid).toBe(`uid-${i}`);
        expect(response.allowed).toBe(true);
        const patch: JsonPatch = response.patch ? JSON.parse(Buffer.from(response.patch, 'base64').toString()) : [];
        expect(answer.outcome).toBe(patch.length > 0 ? 'injected' : 'skipped');
        expect(applyPatch(pod, patch)).toEqual(outputs[i]);
      }
    });
  }

  it('has no orphaned outputs', () => {
    const orphans = fs.readdirSync(path.join(DIR, 'out')).filter((f) => cases.every((c) => !f.startsWith(`${c}.`)));
    if (UPDATE) for (const o of orphans) fs.unlinkSync(path.join(DIR, 'out', o));
    else expect(orphans).toEqual([]);
  });
});
