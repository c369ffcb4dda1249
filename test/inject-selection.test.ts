// Who gets a sidecar: the selection rules, and the example MutatingWebhookConfiguration's selectors
// evaluated the way the API server does, so the cluster only calls the webhook for pods it would
// inject and never for the control plane's own namespace.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { INJECT } from '../control-plane/inject/annotations.ts';
import { loadInjectionConfig, parseInjectionConfig } from '../control-plane/inject/config.ts';
import { injectPod } from '../control-plane/inject/inject-pod.ts';
import { iptablesRules, redirectPlan } from '../control-plane/inject/init-container.ts';
import { parseOverrides } from '../control-plane/inject/annotations.ts';
import { kubernetesProblems } from './helpers/k8s-schema.ts';

const config = loadInjectionConfig();
const spec = { containers: [{ name: 'app', image: 'example.com/app:1' }] };

function decideFor(nsLabels: Record<string, string>, meta: { labels?: Record<string, string>; annotations?: Record<string, string> }, namespace = 'shop') {
  return injectPod({ metadata: meta, spec }, { namespace, namespaceLabels: nsLabels, path: [] }, config);
}

describe('selection', () => {
  it('the pod wins over its namespace, both ways', () => {
    expect(decideFor({ [INJECT]: 'enabled' }, { labels: { [INJECT]: 'false' } }).injected).toBe(false);
    expect(decideFor({ [INJECT]: 'disabled' }, { annotations: { [INJECT]: 'true' } }).injected).toBe(true);
    expect(decideFor({}, {}).injected).toBe(false);
    expect(decideFor({ [INJECT]: 'enabled' }, {}).injected).toBe(true);
  });

  it('rejects values it does not know, and a label and annotation that disagree', () => {
    expect(() => decideFor({}, { labels: { [INJECT]: 'yes' } })).toThrow('metadata.labels["meshpilot.io/inject"]: expected "true" or "false", got "yes"');
    expect(() => decideFor({ [INJECT]: 'true' }, {})).toThrow('namespace.shop.labels["meshpilot.io/inject"]: expected "enabled" or "disabled", got "true"');
    expect(() => decideFor({}, { labels: { [INJECT]: 'true' }, annotations: { [INJECT]: 'false' } })).toThrow(/says false but the label meshpilot.io\/inject says true/);
    expect(() => decideFor({ [INJECT]: 'enabled' }, { annotations: { 'meshpilot.io/proxy-memory': 'lots' } })).toThrow(/proxy-memory"\]: expected a Kubernetes quantity/);
    expect(() => decideFor({ [INJECT]: 'enabled' }, { annotations: { 'meshpilot.io/exclude-outbound-cidrs': 'fd00::/8' } })).toThrow(/"fd00::\/8" is not an IPv4 CIDR block/);
  });

  it('the redirect keeps the health port, excluded ports and CIDRs out, and lets Envoy\'s own traffic through', () => {
    const rules = iptablesRules(config, redirectPlan(config, parseOverrides({ 'meshpilot.io/exclude-inbound-ports': '8443', 'meshpilot.io/exclude-outbound-cidrs': '10.96.0.0/12' }, ['metadata'])));
    const at = (needle: string) => rules.findIndex((r) => r.includes(needle));
    const inboundRedirect = at('REDIRECT --to-ports 15006');
    const outboundRedirect = at('REDIRECT --to-ports 15001');
    for (const exclusion of ['--dport 15021 -j RETURN', '--dport 8443 -j RETURN']) expect(at(exclusion)).toBeGreaterThanOrEqual(0);
    expect(at('--dport 15021 -j RETURN')).toBeLessThan(inboundRedirect);
    expect(at('--dport 8443 -j RETURN')).toBeLessThan(inboundRedirect);
    expect(at('--uid-owner 1337 -j RETURN')).toBeLessThan(outboundRedirect);
    expect(at('-d 10.96.0.0/12 -j RETURN')).toBeLessThan(outboundRedirect);
  });

  it('refuses injection settings that reuse a port or misspell a field, naming the line', () => {
    const text = fs.readFileSync('sidecar-config/injection.yaml', 'utf8');
    expect(() => parseInjectionConfig('x.yaml', text.replace('health: 15021', 'health: 15000'))).toThrow(/ports\.health: port 15000 is used twice/);
    expect(() => parseInjectionConfig('x.yaml', text.replace('logLevel: warning', 'logLevel: warn'))).toThrow(/x\.yaml:\d+:\d+ proxy\.logLevel: .*expected one of/);
    // A bad value is called bad, a missing one missing.
    expect(() => parseInjectionConfig('x.yaml', text.replace('port: 15010', 'port: 99999'))).toThrow(/xds\.port: Too big/);
    expect(() => parseInjectionConfig('x.yaml', text.replace(/^  port: 15010.*$/m, ''))).toThrow(/xds\.port: missing/);
    expect(() => parseInjectionConfig('x.yaml', text.replace('concurrency: 2', 'concurency: 2'))).toThrow(/proxy\.concurency/);
    expect(() => parseInjectionConfig('x.yaml', text.replace('agentHealth: 15020', 'agentHealth: 15021'))).toThrow(/ports\.(agentHealth|health): port 15021 is used twice/);
  });

  it('xds.tls: true or false, true when left out; anything else is refused at its line', () => {
    const text = fs.readFileSync('sidecar-config/injection.yaml', 'utf8');
    expect(text).toMatch(/^  tls: true$/m);
    expect(parseInjectionConfig('x.yaml', text.replace(/^  tls: true$/m, '  tls: false')).xds.tls).toBe(false);
    expect(parseInjectionConfig('x.yaml', text.replace(/^  tls: true$/m, '')).xds.tls).toBe(true);
    // Settings files from before these fields existed keep loading.
    expect(parseInjectionConfig('x.yaml', text.replace(/^  agentHealth: .*$/m, '')).ports.agentHealth).toBe(15020);
    const line = text.split('\n').findIndex((l) => l === '  tls: true') + 1;
    for (const bad of ['yes', '"true"', '1', '~']) {
      expect(() => parseInjectionConfig('x.yaml', text.replace(/^  tls: true$/m, `  tls: ${bad}`)), bad).toThrow(new RegExp(`x\\.yaml:${line}:\\d+ xds\\.tls: expected true or false`));
    }
  });
});

type Requirement = { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] };
function matches(selector: { matchExpressions?: Requirement[] } | undefined, labels: Record<string, string>): boolean {
  return (selector?.matchExpressions ?? []).every((r) => {
    const v = labels[r.key];
    switch (r.operator) {
      case 'In': return v !== undefined && r.values!.includes(v);
      case 'NotIn': return v === undefined || !r.values!.includes(v);
      case 'Exists': return v !== undefined;
      case 'DoesNotExist': return v === undefined;
    }
  });
}

describe('the install\'s webhook (examples/kubernetes/install/base/webhook.yaml)', () => {
  const docs = parseAllDocuments(fs.readFileSync('examples/kubernetes/install/base/webhook.yaml', 'utf8')).map((d) => d.toJS());
  const mwc = docs.find((d) => d.kind === 'MutatingWebhookConfiguration');

  it('every object passes the Kubernetes schema check', () => {
    for (const d of docs) expect(kubernetesProblems(d), `${d.kind} ${d.metadata.name}`).toEqual([]);
  });

  it('sends the API server only the pods injection selects, never the control plane\'s', () => {
    const called = (nsName: string, nsLabels: Record<string, string>, podLabels: Record<string, string>) =>
      mwc.webhooks.some((w: any) => matches(w.namespaceSelector, { ...nsLabels, 'kubernetes.io/metadata.name': nsName }) && matches(w.objectSelector, podLabels));
    const cases: [string, Record<string, string>, Record<string, string>][] = [
      ['shop', { [INJECT]: 'enabled' }, {}],
      ['shop', { [INJECT]: 'enabled' }, { [INJECT]: 'false' }],
      ['shop', { [INJECT]: 'disabled' }, { [INJECT]: 'true' }],
      ['legacy', {}, { [INJECT]: 'true' }],
      ['legacy', {}, {}],
      ['meshpilot-system', { [INJECT]: 'enabled' }, { [INJECT]: 'true' }],
      ['kube-system', {}, { [INJECT]: 'true' }],
    ];
    for (const [ns, nsLabels, podLabels] of cases) {
      const wouldInject = decideFor(nsLabels, { labels: podLabels }, ns).injected;
      // The one difference on purpose: a pod that opts in from an opted-out namespace is honoured
      // by the injector but not sent by the selectors (an opted-out namespace stays out entirely).
      const expected = ns === 'shop' && nsLabels[INJECT] === 'disabled' ? false : wouldInject;
      expect(called(ns, nsLabels, podLabels), `${ns} ${JSON.stringify(nsLabels)} ${JSON.stringify(podLabels)}`).toBe(expected);
    }
  });

  it('keeps the namespaces the injector never touches out of both webhooks, and is quick to fail', () => {
    for (const w of mwc.webhooks) {
      const notIn = w.namespaceSelector.matchExpressions.find((r: Requirement) => r.key === 'kubernetes.io/metadata.name');
      expect([...notIn.values].sort()).toEqual([...config.selection.neverNamespaces].sort());
      expect(w).toMatchObject({ sideEffects: 'None', failurePolicy: 'Fail', admissionReviewVersions: ['v1'] });
      expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
      expect(w.clientConfig.service.path).toBe('/inject');
    }
  });
});
