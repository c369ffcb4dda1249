// explain on a delegated route: it names both the delegate VirtualService's entry that routed the
// request and the root's entry that delegated to it, and where inherited settings were written.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { explain } from '../control-plane/explain/explain.ts';
import { renderExplanation } from '../control-plane/explain/render.ts';
import { compile } from '../control-plane/model/compile.ts';

const FILE = 'test/golden/in/virtual-service-delegate.yaml';
const TEXT = fs.readFileSync(FILE, 'utf8');
const state = compile(parseConfigText(FILE, TEXT));
const lineOf = (s: string) => TEXT.split('\n').findIndex((l) => l.includes(s)) + 1;
const FROM = 'sidecar~10.0.0.50~web-1.front~front.svc.cluster.local';
const ROOT_DELEGATE = { key: 'VirtualService/front/shop', at: `${FILE}:${lineOf('delegate: { name: reviews-routes')}`, path: 'spec.http[0].delegate' };

describe('explain: delegated routes', () => {
  it('names the delegate entry that matched and the root entry that delegated to it', () => {
    const e = explain(state, { from: FROM, request: 'GET http://shop.front:8080/reviews/v2/7', headers: ['x-team: qa'] });
    expect(e.route?.name).toBe('front/shop/reviews>reviews-team/reviews-routes/testers');
    expect(e.route?.rule).toEqual({ key: 'VirtualService/reviews-team/reviews-routes', at: `${FILE}:${lineOf('name: testers')}`, path: 'spec.http[0]', via: ROOT_DELEGATE });
    expect(e.destinations.map((d) => [d.cluster, d.share])).toEqual([['outbound|8080|v2|reviews.reviews-team.svc.cluster.local', 1]]);
    expect(renderExplanation(e)).toContain(`VirtualService reviews-team/reviews-routes spec.http[0] (${FILE}:${lineOf('name: testers')}), delegated by VirtualService front/shop spec.http[0].delegate (${FILE}:${lineOf('delegate: { name: reviews-routes')})`);
  });

  it('falls to the delegate\'s match-less entry under the root\'s prefix, whose timeout comes from the root', () => {
    const e = explain(state, { from: FROM, request: 'GET http://shop.front:8080/reviews/v2/7' });
    expect(e.routes.map((r) => [r.name, r.result])).toEqual([
      ['front/shop/reviews>reviews-team/reviews-routes/testers', 'no match'],
      ['front/shop/reviews>reviews-team/reviews-routes/everyone', 'matched'],
    ]);
    expect(e.route?.rule).toEqual({ key: 'VirtualService/reviews-team/reviews-routes', at: `${FILE}:${lineOf('name: everyone')}`, path: 'spec.http[2]', via: ROOT_DELEGATE });
    const text = renderExplanation(e);
    // The timeout is the root's (3s), the retries the delegate's own.
    expect(text).toContain(`timeout:  3s (route timeout)  <- VirtualService front/shop spec.http[0].timeout (${FILE}:${lineOf('timeout: 3s')})\n`);
    expect(text).toMatch(/retr.*VirtualService reviews-team\/reviews-routes spec\.http\[2\]\.retries .*delegated by VirtualService front\/shop/);
  });

  it('leaves the root\'s own routes as they were', () => {
    const e = explain(state, { from: FROM, request: 'GET http://shop.front:8080/ratings' });
    expect(e.route?.name).toBe('front/shop/rest');
    expect(e.route?.rule).toMatchObject({ key: 'VirtualService/front/shop', path: 'spec.http[2]' });
    expect(e.route?.rule?.via).toBeUndefined();
  });
});
