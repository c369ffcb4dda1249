// VirtualService delegation (Istio's http[].delegate): the schema's rules, positioned, and what the
// model does with missing, unused, hostful or broken delegates.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';

const SE = `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\nspec:\n  hosts: [a.default.svc.cluster.local]\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.0.0.1}]\n---\n`;
const vs = (name: string, body: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}}\nspec:\n${body}---\n`;
const DELEGATE = vs('part', `  http:\n  - route: [{destination: {host: a}}]\n`);
const ROOT = vs('root', `  hosts: [a]\n  http:\n  - match: [{uri: {prefix: /p}}]\n    delegate: {name: part}\n  - route: [{destination: {host: a}}]\n`);

/** `line:col path: message` of each schema error. */
function schemaErrors(text: string): string[] {
  return parseConfigText('t.yaml', text).errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`);
}

function lineOf(text: string, needle: string): number {
  return text.slice(0, text.indexOf(needle)).split('\n').length;
}

describe('http[].delegate schema', () => {
  it('refuses route, redirect or directResponse next to delegate, at each field', () => {
    const text = vs('root', `  hosts: [a]\n  http:\n  - delegate: {name: part}\n    route: [{destination: {host: a}}]\n  - delegate: {name: part}\n    redirect: {uri: /x}\n  - delegate: {name: part}\n    directResponse: {status: 200}\n`);
    expect(schemaErrors(text)).toEqual([
      `${lineOf(text, 'route:')}:5 spec.http[0].route: cannot be set with delegate: the delegate VirtualService's routes say where calls go`,
      `${lineOf(text, 'redirect:')}:5 spec.http[1].redirect: cannot be set with delegate: the delegate VirtualService's routes say where calls go`,
      `${lineOf(text, 'directResponse:')}:5 spec.http[2].directResponse: cannot be set with delegate: the delegate VirtualService's routes say where calls go`,
    ]);
  });

  it('refuses a delegate (no hosts) that delegates again or names gateways, and a bad delegate name', () => {
    const text = vs('part', `  gateways: [gw]\n  http:\n  - delegate: {name: other}\n`);
    expect(schemaErrors(text)).toEqual([
      `${lineOf(text, 'gateways:')}:3 spec.gateways: a delegate VirtualService (no hosts) must not set gateways: its root VirtualService's gateways apply`,
      `${lineOf(text, 'delegate:')}:5 spec.http[0].delegate: a delegate VirtualService (no hosts) cannot delegate again: delegation is one level deep`,
    ]);
    expect(schemaErrors(vs('root', `  hosts: [a]\n  http:\n  - delegate: {name: Bad_Name, namespace: x}\n`))[0]).toMatch(/spec\.http\[0\]\.delegate\.name: /);
  });

  it('accepts a root and its delegate; the delegate\'s namespace defaults to the root\'s', () => {
    const state = compile(parseConfigText('t.yaml', SE + ROOT + DELEGATE));
    expect(state.errors).toEqual([]);
    expect(state.warnings).toEqual([]);
    const routes = state.model.routeTables.find((t) => t.host === 'a.default.svc.cluster.local')!.routes;
    expect(routes.map((r) => [r.name, r.delegation?.key])).toEqual([
      ['default/root/0>default/part/0', 'VirtualService/default/part'],
      ['default/root/1', undefined],
    ]);
    expect(routes[0]!.matches[0]!.uri).toEqual({ kind: 'prefix', value: '/p' });
  });
});

describe('delegates in the model', () => {
  it('accepts an unused delegate with a warning that its routes are not used', () => {
    const state = compile(parseConfigText('t.yaml', SE + DELEGATE));
    expect(state.errors).toEqual([]);
    expect(state.warnings.map(formatIssue)).toEqual([expect.stringMatching(/^t\.yaml:\d+:\d+ spec: no hosts: this is a delegate VirtualService, and no root .* its routes are not used \(VirtualService default\/part\)$/)]);
  });

  it('keeps a root whose delegate is missing, without those routes, with a warning at the delegate field', () => {
    const state = compile(parseConfigText('t.yaml', SE + ROOT));
    expect(state.errors).toEqual([]);
    const at = lineOf(SE + ROOT, 'delegate:');
    expect(state.warnings.map(formatIssue)).toEqual([`t.yaml:${at}:5 spec.http[0].delegate: VirtualService default/part does not exist (yet): the routes it would bring are absent (as in Istio, the rest of this VirtualService applies) (VirtualService default/root)`]);
    expect(state.model.routeTables.find((t) => t.host === 'a.default.svc.cluster.local')!.routes.map((r) => r.name)).toEqual(['default/root/1']);
  });

  it('does not take a VirtualService with hosts as a delegate', () => {
    const hostful = vs('part', `  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n`);
    const state = compile(parseConfigText('t.yaml', SE + ROOT + hostful));
    expect(state.warnings.map((w) => w.message)).toContain('VirtualService default/part has hosts, so it is not a delegate: the routes it would bring are absent (as in Istio, the rest of this VirtualService applies)');
  });

  it('reports a broken delegate on itself and leaves its routes out of the root', () => {
    const broken = vs('part', `  http:\n  - route: [{destination: {host: nowhere}}]\n`);
    const text = SE + ROOT + broken;
    const state = compile(parseConfigText('t.yaml', text));
    expect(state.errors.map(formatIssue)).toEqual([expect.stringMatching(new RegExp(`^t\\.yaml:${lineOf(text, 'host: nowhere')}:\\d+ spec\\.http\\[0\\]\\.route\\[0\\]\\.destination\\.host: .*nowhere.* \\(VirtualService default/part\\)$`))]);
    expect(state.warnings.map((w) => w.message)).toContain('VirtualService default/part has errors (reported on it): the routes it would bring are absent (as in Istio, the rest of this VirtualService applies)');
    expect(state.model.routeTables.find((t) => t.host === 'a.default.svc.cluster.local')!.routes.map((r) => r.name)).toEqual(['default/root/1']);
  });
});

describe('delegation and gateways', () => {
  it('follows delegation for sidecars and gateways alike', () => {
    const gw = `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {app: gw}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n---\n`;
    const root = vs('root', `  hosts: [a]\n  gateways: [gw, mesh]\n  http:\n  - delegate: {name: part}\n  - route: [{destination: {host: a}}]\n`);
    const state = compile(parseConfigText('t.yaml', SE + gw + root + DELEGATE));
    expect(state.errors).toEqual([]);
    expect(state.warnings).toEqual([]);
    expect(state.model.routeTables.find((t) => t.host === 'a.default.svc.cluster.local')!.routes.map((r) => r.name)).toEqual(['default/root/0>default/part/0', 'default/root/1']);
    const atGateway = state.model.gatewayVirtualServices.find((v) => v.key === 'default/root')!.routes;
    expect(atGateway.map((r) => [r.http, r.route.name, r.route.delegation?.key])).toEqual([
      [0, 'default/root/0>default/part/0', 'VirtualService/default/part'],
      [1, 'default/root/1', undefined],
    ]);
  });

  it('a root bound to gateways only: the gateway routes by the delegate, which is not called unused', () => {
    const gw = `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {app: gw}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n---\n`;
    const root = vs('root', `  hosts: [a]\n  gateways: [gw]\n  http:\n  - delegate: {name: part}\n`);
    const state = compile(parseConfigText('t.yaml', SE + gw + root + DELEGATE));
    expect(state.warnings).toEqual([]);
    expect(state.model.gatewayVirtualServices.find((v) => v.key === 'default/root')!.routes.map((r) => r.route.name)).toEqual(['default/root/0>default/part/0']);
  });
});
