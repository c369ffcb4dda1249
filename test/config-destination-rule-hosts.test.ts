// Which DestinationRule a service takes when rules have wildcard hosts: the service's namespace,
// then the root namespace, then any other; within one, the exact host, then the longest wildcard.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';

const se = (name: string, ns: string, host: string) =>
  `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  hosts: [${host}]\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.0.0.1}]\n`;
const dr = (name: string, ns: string, host: string) =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  host: "${host}"\n  subsets: [{name: s, labels: {v: "1"}}]\n`;

function ruleFor(docs: string[], host: string) {
  const state = compile(parseConfigText('t.yaml', docs.join('---\n')));
  return {
    rule: state.model.clusters.find((c) => c.name === `outbound|80||${host}`)?.origin?.key,
    errors: state.errors.map(formatIssue),
    warnings: state.warnings.map((w) => `${w.key} ${w.path}: ${w.message}`),
  };
}

const CART = 'cart.shop.svc.cluster.local';

describe('DestinationRule hosts', () => {
  it('takes the most specific host within a namespace: exact, then the longest wildcard, then *', () => {
    const base = [se('cart', 'shop', CART), dr('all', 'shop', '*'), dr('local', 'shop', '*.local'), dr('svc', 'shop', '*.svc.cluster.local')];
    expect(ruleFor(base, CART).rule).toBe('DestinationRule/shop/svc');
    expect(ruleFor([...base, dr('cart', 'shop', 'cart')], CART).rule).toBe('DestinationRule/shop/cart');
    expect(ruleFor(base.slice(0, 3), CART).rule).toBe('DestinationRule/shop/local');
    expect(ruleFor(base.slice(0, 2), CART).rule).toBe('DestinationRule/shop/all');
    expect(ruleFor(base, CART).errors).toEqual([]);
  });

  it("looks in the service's namespace, then the root namespace, then others", () => {
    const other = dr('exact-elsewhere', 'web', CART);
    const root = dr('mesh', 'istio-system', '*.local');
    const own = dr('ns', 'shop', '*.shop.svc.cluster.local');
    expect(ruleFor([se('cart', 'shop', CART), other], CART).rule).toBe('DestinationRule/web/exact-elsewhere');
    const r = ruleFor([se('cart', 'shop', CART), other, root], CART);
    expect(r.rule).toBe('DestinationRule/istio-system/mesh');
    // The exact rule that lost says so, with Istio's difference.
    expect(r.warnings).toEqual([expect.stringMatching(/^DestinationRule\/web\/exact-elsewhere spec\.host: DestinationRule DestinationRule\/istio-system\/mesh applies to cart\.shop\.svc\.cluster\.local instead: .*callers in namespace web\)$/)]);
    expect(ruleFor([se('cart', 'shop', CART), other, root, own], CART).rule).toBe('DestinationRule/shop/ns');
  });

  it('keeps a rule that matches no service yet, with a warning; wildcard hosts need quoting only for YAML', () => {
    const r = ruleFor([se('cart', 'shop', CART), dr('later', 'shop', '*.example.com')], 'x');
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual(['DestinationRule/shop/later spec.host: host *.example.com matches no service yet: the rule applies once one is declared (a ServiceEntry or a Kubernetes Service)']);
  });

  it('matches ServiceEntry hosts, wildcard ones included, by suffix', () => {
    const docs = [se('api', 'ext', 'api.partner.example'), se('any', 'ext', '"*.tenant.partner.example"'), dr('partner', 'ext', '*.partner.example')];
    expect(ruleFor(docs, 'api.partner.example').rule).toBe('DestinationRule/ext/partner');
    expect(ruleFor(docs, '*.tenant.partner.example').rule).toBe('DestinationRule/ext/partner');
    expect(ruleFor([se('api', 'ext', 'api.partner.example'), dr('other', 'ext', '*.example.org')], 'api.partner.example').rule).toBeUndefined();
  });

  it('still refuses two rules for one host in one namespace, and a bad wildcard', () => {
    const r = ruleFor([se('cart', 'shop', CART), dr('a', 'shop', '*.local'), dr('b', 'shop', '*.local')], CART);
    expect(r.errors).toEqual([expect.stringMatching(/spec\.host: host \*\.local already has DestinationRule DestinationRule\/shop\/a; merge them into one/)]);
    expect(parseConfigText('t.yaml', dr('bad', 'shop', 'a.*.com')).errors.map((e) => `${e.path}: ${e.message}`)).toEqual(['spec.host: invalid host "a.*.com": a wildcard may only be a leading "*."']);
  });

  it('PASSTHROUGH makes a cluster ORIGINAL_DST (resolution NONE), at the level it is set', () => {
    const text = [se('cart', 'shop', CART), `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: pt, namespace: shop}\nspec:\n  host: "*"\n  subsets: [{name: direct, labels: {v: "1"}, trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}}]\n`].join('---\n');
    const state = compile(parseConfigText('t.yaml', text));
    expect(state.errors).toEqual([]);
    expect(Object.fromEntries(state.model.clusters.map((c) => [c.name, c.resolution]))).toEqual({
      [`outbound|80|direct|${CART}`]: 'NONE',
      [`outbound|80||${CART}`]: 'STATIC',
    });
  });
});
