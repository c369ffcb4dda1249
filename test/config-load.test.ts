// The rule-input stage: YAML files -> validated Istio objects, with every error located by
// file:line:col and field path.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { queryObjects } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { Document } from 'yaml';
import { loadDirectory, parseConfigText } from '../control-plane/config/load.ts';
import { type ConfigError, type ConfigObject, formatError, isKind } from '../control-plane/config/types.ts';

const FIXTURES = relative(process.cwd(), resolve(import.meta.dirname, 'fixtures/config'));

/** 1-based line and column of the `nth` occurrence of `needle` in `text`. */
function posOf(text: string, needle: string, nth = 1): { line: number; col: number } {
  let at = -1;
  for (let i = 0; i < nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`${needle} not in text`);
  }
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  return { line, col: at - before.lastIndexOf('\n') };
}

function only(errors: ConfigError[], path: string): ConfigError {
  const hits = errors.filter((e) => e.path === path);
  expect(hits.map(formatError), `errors at ${path} among:\n${errors.map(formatError).join('\n')}`).toHaveLength(1);
  return hits[0]!;
}

const VS_HEAD = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
`;

describe('loadDirectory on a valid tree', () => {
  const dir = `${FIXTURES}/valid`;
  const result = loadDirectory(dir);
  const byKey = new Map(result.objects.map((o) => [o.key, o]));

  it('loads every object of every kind, from .yaml and .yml files in subdirectories, without errors', () => {
    expect(result.errors.map(formatError)).toEqual([]);
    expect(result.objects.map((o) => o.key)).toEqual([
      'DestinationRule/default/reviews',
      'ServiceEntry/shop/legacy-db',
      'ServiceEntry/shop/payments',
      'ServiceEntry/shop/ratings-vms',
      'VirtualService/default/reviews',
      'WorkloadEntry/shop/vm-1',
    ]);
  });

  it('fills in the defaults: namespace "default", empty labels and annotations', () => {
    const vs = byKey.get('VirtualService/default/reviews')!;
    expect(vs).toMatchObject({ kind: 'VirtualService', name: 'reviews', namespace: 'default', labels: {}, annotations: {} });
    expect(vs.apiVersion).toBe('networking.istio.io/v1');
    const dr = byKey.get('DestinationRule/default/reviews')!;
    expect(dr.labels).toEqual({ team: 'bookinfo' });
    expect(dr.annotations).toEqual({ owner: 'reviews team' });
    expect(dr.apiVersion).toBe('networking.istio.io/v1beta1');
  });

  it('keeps the spec as written, typed per kind', () => {
    const vs = byKey.get('VirtualService/default/reviews')!;
    if (!isKind(vs, 'VirtualService')) throw new Error('wrong kind');
    const [jason, split] = vs.spec.http!;
    expect(jason!.match![0]!.headers).toEqual({ 'end-user': { exact: 'jason' }, 'x-canary': {} });
    expect(jason!.retries).toEqual({ attempts: 3, perTryTimeout: '500ms', retryOn: 'connect-failure,refused-stream,503' });
    expect(split!.route!.map((r) => [r.destination.subset, r.weight])).toEqual([['v1', 80], ['v3', 20]]);
    expect(split!.route![0]!.destination.port).toEqual({ number: 9080 });

    const se = byKey.get('ServiceEntry/shop/legacy-db')!;
    if (!isKind(se, 'ServiceEntry')) throw new Error('wrong kind');
    expect(se.spec.endpoints![0]).toEqual({ address: '10.0.0.12', ports: { 'tcp-postgres': 25432 }, locality: 'eu-west/zone-a', weight: 2 });
    expect(Object.isFrozen(se.spec.endpoints![0])).toBe(true);
  });

  it('gives file paths relative to the directory as given, and positions of documents and fields', () => {
    const file = `${dir}/reviews.yaml`;
    const dr = byKey.get('DestinationRule/default/reviews')!;
    expect(dr.source).toEqual({ file, line: 58, col: 1 }); // after an empty document
    const vs = byKey.get('VirtualService/default/reviews')!;
    expect(vs.locate(['spec', 'http', 1, 'route', 1, 'destination', 'subset'])).toEqual({ file, line: 46, col: 17 });
    // A field that does not exist resolves to its nearest existing ancestor (the destination key).
    expect(vs.locate(['spec', 'http', 1, 'route', 1, 'destination', 'port', 'number'])).toEqual({ file, line: 44, col: 7 });
    const se = byKey.get('ServiceEntry/shop/payments')!;
    expect(se.source.file).toBe(`${dir}/external/services.yml`);
  });
});

describe('parseConfigText errors', () => {
  it('names an unknown field with file:line:col and its path', () => {
    const text = `${VS_HEAD}  - route:\n    - destination: {host: reviews}\n    foo: 1\n`;
    const { objects, errors } = parseConfigText('vs.yaml', text);
    expect(objects).toEqual([]);
    const { line, col } = posOf(text, 'foo');
    expect(errors.map(formatError)).toEqual([
      `vs.yaml:${line}:${col} spec.http[0].foo: field not supported by meshpilot (VirtualService default/reviews)`,
    ]);
  });

  it('suggests the field a misspelt one was probably meant to be', () => {
    const text = `${VS_HEAD}  - route:\n    - destination: {host: reviews}\n    timeOut: 1s\n`;
    const e = only(parseConfigText('vs.yaml', text).errors, 'spec.http[0].timeOut');
    expect(e.message).toBe('field not supported by meshpilot (did you mean "timeout"?)');
  });

  it('rejects Istio fields meshpilot does not support, naming them', () => {
    const text = `${VS_HEAD}  - mirrorPercent: 5\n    route:\n    - destination: {host: reviews}\ngateways: [mesh]\n`;
    const { errors } = parseConfigText('vs.yaml', text);
    expect(only(errors, 'spec.http[0].mirrorPercent')).toMatchObject({ ...posOf(text, 'mirrorPercent'), message: 'field not supported by meshpilot (did you mean "mirrorPercentage"?)' });
    expect(only(errors, 'gateways')).toMatchObject(posOf(text, 'gateways'));
  });

  it('reports a bad RE2 regex and a bad duration at their lines', () => {
    const text = `${VS_HEAD}  - match:\n    - uri:\n        regex: "^/api/(?=v1)"\n    route:\n    - destination: {host: reviews}\n    timeout: 10 seconds\n`;
    const { errors } = parseConfigText('vs.yaml', text);
    const regex = only(errors, 'spec.http[0].match[0].uri.regex');
    expect(regex).toMatchObject(posOf(text, '"^/api/(?=v1)"'));
    expect(regex.message).toMatch(/invalid regex \(RE2 syntax\).*\(\?=/);
    const timeout = only(errors, 'spec.http[0].timeout');
    expect(timeout).toMatchObject(posOf(text, '10 seconds'));
    expect(timeout.message).toMatch(/invalid duration "10 seconds"/);
  });

  it('names the line of a YAML syntax error and loads nothing from that file', () => {
    const text = `${VS_HEAD}  - route:\n    - destination: {host: reviews\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ok}\nspec: {host: ok}\n`;
    const { objects, errors } = parseConfigText('broken.yaml', text);
    expect(objects).toEqual([]);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.message).toMatch(/^YAML syntax error: /);
    expect(errors[0]!.line).toBeGreaterThanOrEqual(posOf(text, '{host: reviews').line);
    expect(errors[0]!.line).toBeLessThanOrEqual(posOf(text, '---').line);
  });

  it('rejects a StringMatch with two members, and one with none', () => {
    const text = `${VS_HEAD}  - match:\n    - uri: {prefix: /a, exact: /a}\n      method: {}\n    route:\n    - destination: {host: reviews}\n`;
    const { errors } = parseConfigText('vs.yaml', text);
    expect(only(errors, 'spec.http[0].match[0].uri')).toMatchObject({
      ...posOf(text, 'uri'),
      message: 'only one of exact, prefix, regex may be set (found exact and prefix)',
    });
    expect(only(errors, 'spec.http[0].match[0].method').message).toBe('exactly one of exact, prefix, regex must be set');
  });

  it('names kinds and apiVersions it does not accept, and skips empty documents', () => {
    const text = `---\n# nothing\n---\napiVersion: networking.istio.io/v1\nkind: Telemetry\nmetadata: {name: gw}\nspec: {}\n---\napiVersion: networking.istio.io/v2\nkind: DestinationRule\nmetadata: {name: dr}\nspec: {host: a}\n`;
    const { objects, errors } = parseConfigText('k.yaml', text);
    expect(objects).toEqual([]);
    expect(errors.map(formatError)).toEqual([
      `k.yaml:5:7 kind: unsupported kind "Telemetry" (meshpilot accepts VirtualService, DestinationRule, ServiceEntry, WorkloadEntry, AuthorizationPolicy, PeerAuthentication, RequestAuthentication, RateLimit, Sidecar, Gateway, Canary, FaultExperiment)`,
      `k.yaml:9:13 apiVersion: unsupported apiVersion "networking.istio.io/v2" for DestinationRule (meshpilot accepts networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3) (DestinationRule default/dr)`,
    ]);
  });

  it('requires metadata.name as a DNS-1123 name and reports missing required fields', () => {
    const text = `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: Ratings_DR\nspec:\n  subsets: [{name: v1}]\n`;
    const { errors } = parseConfigText('dr.yaml', text);
    expect(only(errors, 'metadata.name')).toMatchObject({ ...posOf(text, 'Ratings_DR'), kind: 'DestinationRule', name: 'Ratings_DR' });
    expect(only(errors, 'spec.host')).toMatchObject({ ...posOf(text, 'spec'), message: 'required field is missing' });
  });

  it('reports every error of a document in one pass, and the valid documents next to it still load', () => {
    const text = `${VS_HEAD}  - route:\n    - destination: {host: reviews}\n      weight: -150\n    - destination: {host: ratings, subset: V1}\n    retries: {attempts: -1, retryOn: "5xx,teapot"}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ok, namespace: prod}\nspec: {host: ok}\n`;
    const { objects, errors } = parseConfigText('multi.yaml', text);
    expect(objects.map((o: ConfigObject) => o.key)).toEqual(['DestinationRule/prod/ok']);
    expect(errors.map((e) => e.path)).toEqual([
      'spec.http[0].route',
      'spec.http[0].route[0].weight',
      'spec.http[0].route[1].destination.subset',
      'spec.http[0].retries.attempts',
      'spec.http[0].retries.retryOn',
    ]);
    expect(errors.every((e) => e.kind === 'VirtualService' && e.name === 'reviews' && e.namespace === 'default')).toBe(true);
  });

  it('never throws, whatever the input', () => {
    const inputs = [
      '',
      '\u0000\u0001',
      '- just\n- a list\n',
      'plain scalar',
      '{',
      'a: *undefined_alias\n',
      'apiVersion: 3\nkind: [VirtualService]\nmetadata: 7\nspec: null\n',
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: 5, http: {a: 1}}\n',
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec: {hosts: [null], ports: [1], endpoints: "x", resolution: 1}\n',
      `a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [${Array(200).fill('*b').join(',')}]\n`,
    ];
    for (const text of inputs) {
      const r = parseConfigText('junk.yaml', text);
      expect(r.objects).toEqual([]);
      for (const e of r.errors) expect(e.line).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('duplicates across files', () => {
  it('keeps the first by path order and reports the other', () => {
    const dir = `${FIXTURES}/duplicates`;
    const { objects, errors } = loadDirectory(dir);
    expect(objects.map((o) => [o.key, o.source.file])).toEqual([
      ['DestinationRule/default/other', `${dir}/b.yaml`],
      ['DestinationRule/default/ratings', `${dir}/a.yaml`],
    ]);
    expect(errors.map(formatError)).toEqual([
      `${dir}/b.yaml:11:9 metadata.name: duplicate DestinationRule default/ratings: the one at ${dir}/a.yaml:4:9 stays in force (first in path order); this one is ignored (DestinationRule default/ratings)`,
    ]);
  });

  it('reports a directory that cannot be read instead of throwing', () => {
    const { objects, errors } = loadDirectory(`${FIXTURES}/does-not-exist`);
    expect(objects).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/^cannot read directory/);
  });
});

describe('what a loaded object keeps', () => {
  // Plain YAML is read by the fast reader (config/simple-yaml.ts), which makes no parse tree; a tab
  // in a comment sends the same files to yaml, whose trees are let go.
  for (const [form, tail] of [['plain YAML', ''], ['YAML read by yaml', '# a\ttab\n']] as const) {
    it(`its file's text, not the YAML parse trees: positions asked later come from parsing the file again (${form})`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'meshpilot-load-'));
      try {
        const text = (i: number) => `${VS_HEAD.replace('name: reviews', `name: vs-${i}`)}  - route: [{ destination: { host: reviews, subset: v1 } }]
  - match: [{ uri: { prefix: /v2 } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
${tail}`;
        for (let i = 0; i < 12; i++) writeFileSync(join(dir, `vs-${String(i).padStart(2, '0')}.yaml`), text(i));
        const before = queryObjects(Document, { format: 'count' });
        const result = loadDirectory(dir);
        expect(result.errors.map(formatError)).toEqual([]);
        expect(result.objects).toHaveLength(12);
        // Only the last few files' trees stay at hand (a collection runs first); the fast reader makes none.
        expect(queryObjects(Document, { format: 'count' })).toBeLessThanOrEqual(tail ? 4 : before);
        const first = result.objects[0]!;
        const t = text(0);
        expect(first.locate(['spec', 'http', 1])).toEqual({ file: join(dir, 'vs-00.yaml'), ...posOf(t, 'match:') }); // the item's first key
        expect(first.locate(['spec', 'http', 1, 'route', 0, 'destination', 'subset'])).toEqual({ file: join(dir, 'vs-00.yaml'), ...posOf(t, 'v2 }', 2) });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
