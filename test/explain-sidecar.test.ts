// explain under a Sidecar and exportTo: whether a request is passed through or black-holed, and
// which Sidecar or mesh setting decided it; why a service of the mesh has no config in this proxy.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { explain } from '../control-plane/explain/explain.ts';
import { compile } from '../control-plane/model/compile.ts';
import { DEFAULT_MESH } from '../control-plane/model/mesh-identity.ts';

function state(file: string, mesh = DEFAULT_MESH) {
  const full = path.join('test/golden/in', file);
  const s = compile(parseConfigText(full, fs.readFileSync(full, 'utf8')), [], undefined, mesh);
  expect(s.errors).toEqual([]);
  return s;
}

const PRODUCTPAGE = { from: 'sidecar~10.0.0.9~productpage-v1-1.default~default.svc.cluster.local', namespace: 'default', labels: { app: 'productpage' } };

describe('explain: outbound traffic policy', () => {
  it('REGISTRY_ONLY from the root namespace Sidecar: an unknown port is dropped, an unknown host on a known port gets 502', () => {
    const s = state('sidecar-registry-only.yaml');
    const port = explain(s, { ...PRODUCTPAGE, request: 'GET http://example.org:8000/' });
    expect(port.outcome.kind).toBe('blocked');
    expect(port.outcome.summary).toContain('virtualOutbound drops the connection (BlackHoleCluster) by the outbound traffic policy REGISTRY_ONLY, from Sidecar istio-system/default');
    // A TLS port of a known service: its SNI chain takes it; another name on that port is dropped.
    const tls = explain(s, { ...PRODUCTPAGE, request: 'tls://api.github.com:443' });
    expect(tls.outcome.kind).toBe('forward');
    expect(tls.outcome.summary).toContain('forwarded to api.github.com');
    const other = explain(s, { ...PRODUCTPAGE, request: 'tls://evil.example.org:443' });
    expect(other.outcome.summary).toContain('BlackHoleCluster');
    const host = explain(s, { ...PRODUCTPAGE, request: 'GET http://example.org:9080/' });
    expect(host.virtualHost?.name).toBe('block_all');
    expect(host.outcome).toMatchObject({ kind: 'direct response', status: 502 });
    expect(host.notes).toContain('"example.org:9080" is no service this proxy sees on this port: the catch-all virtual host refuses it with 502 (block_all), by the outbound traffic policy REGISTRY_ONLY, from Sidecar istio-system/default');
  });

  it('ALLOW_ANY by default, REGISTRY_ONLY from the mesh settings when no Sidecar says otherwise', () => {
    const s = state('exportto.yaml');
    expect(explain(s, { ...PRODUCTPAGE, request: 'GET http://example.org:8000/' }).outcome.summary).toContain('PassthroughCluster) to whatever address "example.org" resolves to, by the outbound traffic policy ALLOW_ANY, from the default');
    const strict = state('exportto.yaml', { ...DEFAULT_MESH, outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } });
    const e = explain(strict, { ...PRODUCTPAGE, request: 'GET http://example.org:8000/' });
    expect(e.outcome.kind).toBe('blocked');
    expect(e.outcome.summary).toContain('REGISTRY_ONLY, from the mesh settings (outboundTrafficPolicy)');
  });
});

describe('explain: what a proxy sees', () => {
  it('a service left out by the Sidecar egress, or by exportTo, is named with the reason', () => {
    const scoped = explain(state('sidecar-egress-scope.yaml'), { ...PRODUCTPAGE, request: 'GET http://details.default.svc.cluster.local:9080/' });
    expect(scoped.virtualHost?.name).toBe('allow_any');
    const reviews = explain(state('sidecar-egress-scope.yaml'), { ...PRODUCTPAGE, request: 'GET http://reviews.default.svc.cluster.local:9080/' });
    expect(reviews.routes.map((r) => r.name)).toEqual(['default']);
    expect(reviews.notes.join('\n')).toContain('is not in this caller\'s config: Sidecar/default/productpage takes no VirtualService from namespace ops for reviews.default.svc.cluster.local (its egress hosts)');
    expect(scoped.notes[0]).toMatch(/^details\.default\.svc\.cluster\.local is a service of the mesh, but Sidecar default\/productpage \(test\/golden\/in\/sidecar-egress-scope\.yaml:\d+\) does not name it in its egress hosts/);
    const hidden = explain(state('exportto.yaml'), { ...PRODUCTPAGE, request: 'GET http://vault.secrets.svc.cluster.local:8200/' });
    expect(hidden.outcome.kind).toBe('passthrough');
    expect(hidden.notes[0]).toBe('vault.secrets.svc.cluster.local is a service of the mesh, but its exportTo (secrets) does not include namespace default (ServiceEntry/secrets/vault): this proxy has no config for it');
  });

  it('a VirtualService not exported to the caller does not apply: the default route does', () => {
    const e = explain(state('exportto.yaml'), { ...PRODUCTPAGE, request: 'GET http://billing.billing.svc.cluster.local:8080/' });
    expect(e.outcome.kind).toBe('forward');
    expect(e.routes.map((r) => r.name)).toEqual(['default']);
    expect(e.faults).toEqual([]);
    expect(e.notes).toContain("route billing/billing-internal/0 (VirtualService billing/billing-internal (test/golden/in/exportto.yaml:34)) is not in this caller's config: its VirtualService's exportTo (billing) does not include namespace default");
    // In its own namespace it applies (its fault is there).
    const own = explain(state('exportto.yaml'), { from: 'sidecar~10.5.9.9~pay-1.billing~billing.svc.cluster.local', namespace: 'billing', request: 'GET http://billing.billing.svc.cluster.local:8080/' });
    expect(own.routes.map((r) => r.name)).toEqual(['billing/billing-internal/0']);
  });
});
