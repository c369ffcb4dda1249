// A VirtualService without hosts is Istio's delegate: accepted, inert until a root VirtualService
// pulls it in with http[].delegate, which meshpilot does not take yet (that is refused at the field).
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';

const SE = `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\nspec:\n  hosts: [a.default.svc.cluster.local]\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.0.0.1}]\n---\n`;
const DELEGATE = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: part}\nspec:\n  http:\n  - route: [{destination: {host: a}}]\n`;

describe('delegate VirtualServices', () => {
  it('accepts one without hosts, with a warning that its routes are not used, and makes no route table of it', () => {
    const state = compile(parseConfigText('t.yaml', SE + DELEGATE));
    expect(state.errors).toEqual([]);
    expect(state.warnings.map(formatIssue)).toEqual([expect.stringMatching(/^t\.yaml:\d+:\d+ spec: no hosts: this is a delegate VirtualService, .*its routes are not used \(VirtualService default\/part\)$/)]);
    expect(state.accepted.map((o) => o.key)).toContain('VirtualService/default/part');
    expect(state.model.routeTables.flatMap((t) => t.routes).filter((r) => r.origin.key === 'VirtualService/default/part')).toEqual([]);
  });

  it('refuses a root naming a delegate at the field, as not supported', () => {
    const root = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: root}\nspec:\n  hosts: [a]\n  http:\n  - delegate: {name: part, namespace: default}\n`;
    const r = parseConfigText('t.yaml', root);
    expect(r.errors.map((e) => `${e.path}: ${e.message}`)).toContain('spec.http[0].delegate: field not supported by meshpilot');
    expect(r.objects).toEqual([]);
  });
});
