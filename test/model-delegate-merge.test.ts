// Istio's merge of a delegate's http entry under its root's: which matches fit, what the merged
// match says, and which root settings the delegate entry inherits.
import { describe, expect, it } from 'vitest';
import { mergeDelegated, mergeMatches, stringMatchConflict } from '../control-plane/model/delegate-merge.ts';

describe('delegate match merge', () => {
  it('fits a delegate string match inside the root\'s as Istio does', () => {
    const fits = (root: object | undefined, leaf: object | undefined) => !stringMatchConflict(root as never, leaf as never);
    expect(fits({ prefix: '/reviews' }, { prefix: '/reviews/v2' })).toBe(true);
    expect(fits({ prefix: '/reviews' }, { exact: '/reviews/1' })).toBe(true);
    expect(fits({ prefix: '/reviews' }, { prefix: '/rev' })).toBe(false);
    expect(fits({ prefix: '/reviews' }, { exact: '/ratings' })).toBe(false);
    expect(fits({ exact: '/a' }, { exact: '/a' })).toBe(true);
    expect(fits({ exact: '/a' }, { prefix: '/a' })).toBe(false);
    expect(fits({ regex: '/a.*' }, { prefix: '/a' })).toBe(false);
    expect(fits({ prefix: '/a' }, { regex: '/a.*' })).toBe(false);
    expect(fits(undefined, { regex: '/a.*' })).toBe(true);
    expect(fits({ regex: '/a.*' }, undefined)).toBe(true);
  });

  it('combines conditions, the delegate\'s own winning; a match that fits no root match is a conflict', () => {
    const root = [{ uri: { prefix: '/r' }, headers: { 'x-a': { exact: '1' } }, port: 80 }];
    expect(mergeMatches(root, [{ uri: { prefix: '/r/v2' }, headers: { 'x-b': { exact: '2' } } }])).toEqual({
      matches: [{ uri: { prefix: '/r/v2' }, headers: { 'x-a': { exact: '1' }, 'x-b': { exact: '2' } }, port: 80 }],
    });
    expect(mergeMatches(root, undefined)).toEqual({ matches: root });
    expect(mergeMatches(undefined, [{ uri: { exact: '/x' } }])).toEqual({ matches: [{ uri: { exact: '/x' } }] });
    expect(mergeMatches(root, [{ headers: { 'x-a': { exact: '2' } } }])).toEqual({ conflict: "its match[0] headers does not fit within the root route's match" });
    expect(mergeMatches(root, [{ port: 81 }])).toEqual({ conflict: "its match[0] port does not fit within the root route's match" });
    // Two root matches: the delegate match is combined with each one it fits.
    expect(mergeMatches([{ uri: { prefix: '/a' } }, { uri: { prefix: '/b' } }], [{ method: { exact: 'GET' } }])).toEqual({
      matches: [{ uri: { prefix: '/a' }, method: { exact: 'GET' } }, { uri: { prefix: '/b' }, method: { exact: 'GET' } }],
    });
  });

  it('inherits the root entry\'s settings the delegate entry does not set, each whole', () => {
    const root = { match: [{ uri: { prefix: '/r' } }], delegate: { name: 'd' }, timeout: '3s', retries: { attempts: 1 }, headers: { request: { set: { 'x-root': '1' } } } };
    const leaf = { route: [{ destination: { host: 'a' } }], retries: { attempts: 5 } };
    expect(mergeDelegated(root, leaf)).toEqual({ http: { route: [{ destination: { host: 'a' } }], match: [{ uri: { prefix: '/r' } }], timeout: '3s', retries: { attempts: 5 }, headers: { request: { set: { 'x-root': '1' } } } } });
    // A redirect keeps none of the forwarding settings.
    expect(mergeDelegated(root, { redirect: { uri: '/x' } })).toEqual({ http: { redirect: { uri: '/x' }, match: [{ uri: { prefix: '/r' } }], headers: { request: { set: { 'x-root': '1' } } } } });
  });
});
