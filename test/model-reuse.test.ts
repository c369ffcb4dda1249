// Between model generations, what did not change keeps its object, so translation and encoding
// are skipped for it: an endpoint change yields new endpoint resources and reuses every cluster.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { reuseUnchanged } from '../control-plane/model/reuse.ts';
import { compile } from '../control-plane/model/compile.ts';
import { proxyFromNode } from '../control-plane/translate/proxy.ts';
import { translate } from '../control-plane/translate/translate.ts';
import { TranslateMemo } from '../control-plane/translate/memo.ts';
import { CLUSTER, ENDPOINTS } from '../control-plane/translate/type-urls.ts';

const file = 'examples/bookinfo/services.yaml';
const rules = ['examples/bookinfo/destination-rules.yaml', 'examples/bookinfo/reviews-canary.yaml'].map((f) => parseConfigText(f, fs.readFileSync(f, 'utf8')));

function modelOf(servicesText: string) {
  const parts = [parseConfigText(file, servicesText), ...rules];
  return compile({ objects: parts.flatMap((p) => p.objects), errors: parts.flatMap((p) => p.errors) }).model;
}

describe('model reuse between generations', () => {
  it('keeps unchanged clusters as the same objects, so their resources are not rebuilt', () => {
    const text = fs.readFileSync(file, 'utf8');
    const before = reuseUnchanged(modelOf(text), undefined);
    // Move one reviews endpoint to another port: an endpoint-only change.
    const moved = text.replace(/19083/, '29083');
    expect(moved).not.toBe(text);
    const after = reuseUnchanged(modelOf(moved), before);

    const proxy = proxyFromNode({ id: 'client', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } });
    const memo = new TranslateMemo(); // one translator memory, as the snapshot cache keeps
    const [a, b] = [translate(before, proxy, memo), translate(after, proxy, memo)];
    const changed = b[ENDPOINTS].filter((r) => !a[ENDPOINTS].includes(r)).map((r) => r.cluster_name);
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((n) => String(n).includes('reviews'))).toBe(true);
    // Every endpoint resource of the other services is the very same object.
    const others = b[ENDPOINTS].filter((r) => !String(r.cluster_name).includes('reviews'));
    expect(others.length).toBeGreaterThan(0);
    for (const r of others) expect(a[ENDPOINTS]).toContain(r);
    // Cluster resources do not depend on endpoints: the same JSON, and for other services the same object.
    expect(JSON.stringify(b[CLUSTER])).toBe(JSON.stringify(a[CLUSTER]));
    for (const r of b[CLUSTER].filter((c) => !String(c.name).includes('reviews'))) expect(a[CLUSTER]).toContain(r);
  });
});
