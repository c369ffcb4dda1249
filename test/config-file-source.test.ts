// FileConfigSource: last-good semantics per file and per object, and live reloads via fs.watch.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileConfigSource } from '../control-plane/config/file-source.ts';
import { type LoadResult, formatError, isKind } from '../control-plane/config/types.ts';

const VS = (timeout: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
    timeout: ${timeout}
`;
const DR = (name: string, subsets: string[]) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${name}
spec:
  host: ${name}
  subsets: [${subsets.map((s) => `{name: ${s}, labels: {version: ${s}}}`).join(', ')}]
`;

let dir: string;
const sources: FileConfigSource[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshpilot-config-'));
});
afterEach(() => {
  for (const s of sources.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

// Short settle and quiet periods keep the tests fast; the quiet period stays well above the
// 50 ms gaps of the transient-state tests.
const FAST = { debounceMs: 20, settleMs: 20, quietMs: 300 };

function source(): FileConfigSource {
  const s = new FileConfigSource(dir, FAST);
  sources.push(s);
  return s;
}

const keys = (r: LoadResult) => r.objects.map((o) => o.key);
const find = (r: LoadResult, key: string) => r.objects.find((o) => o.key === key);

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('FileConfigSource last-good semantics', () => {
  it('keeps all of a file\'s objects while it has a YAML syntax error, and reports the error line', () => {
    writeFileSync(join(dir, 'a.yaml'), `${VS('2s')}---\n${DR('reviews', ['v1'])}`);
    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1']));
    const src = source();
    const first = src.load();
    expect(first.errors).toEqual([]);
    expect(keys(first)).toEqual(['DestinationRule/default/ratings', 'DestinationRule/default/reviews', 'VirtualService/default/reviews']);

    const broken = `${VS('2s')}---\n${DR('reviews', ['v1'])}  subsets: [{name: v2\n`;
    writeFileSync(join(dir, 'a.yaml'), broken);
    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1', 'v2'])); // other files still update
    const r = src.load();
    expect(keys(r)).toEqual(keys(first));
    expect(find(r, 'VirtualService/default/reviews')).toBe(find(first, 'VirtualService/default/reviews'));
    expect(find(r, 'DestinationRule/default/reviews')).toBe(find(first, 'DestinationRule/default/reviews'));
    const ratings = find(r, 'DestinationRule/default/ratings')!;
    expect(isKind(ratings, 'DestinationRule') && ratings.spec.subsets?.map((s) => s.name)).toEqual(['v1', 'v2']);

    const syntax = r.errors.filter((e) => e.message.startsWith('YAML syntax error'));
    expect(syntax.length).toBeGreaterThan(0);
    expect(syntax[0]!.file).toBe(join(dir, 'a.yaml'));
    expect(syntax[0]!.line).toBeGreaterThanOrEqual(broken.split('\n').length - 2);
    expect(r.errors.some((e) => /previous 2 objects stay in force/.test(e.message))).toBe(true);
    expect(src.current()).toBe(r);
  });

  it('keeps the previous version of an object that became invalid, updates the others, leaves out never-valid ones', () => {
    writeFileSync(join(dir, 'a.yaml'), `${VS('2s')}---\n${DR('reviews', ['v1'])}`);
    const src = source();
    const before = src.load();
    const oldVs = find(before, 'VirtualService/default/reviews')!;

    const text = `${VS('2 seconds')}---\n${DR('reviews', ['v1', 'v2'])}---\n${DR('Bad_Name', ['v1'])}`;
    writeFileSync(join(dir, 'a.yaml'), text);
    const r = src.load();
    expect(keys(r)).toEqual(['DestinationRule/default/reviews', 'VirtualService/default/reviews']);
    const vs = find(r, 'VirtualService/default/reviews')!;
    expect(vs).toBe(oldVs);
    expect(isKind(vs, 'VirtualService') && vs.spec.http![0]!.timeout).toBe('2s');
    const dr = find(r, 'DestinationRule/default/reviews')!;
    expect(isKind(dr, 'DestinationRule') && dr.spec.subsets?.map((s) => s.name)).toEqual(['v1', 'v2']);

    const messages = r.errors.map(formatError);
    expect(messages).toContainEqual(expect.stringMatching(/a\.yaml:10:14 spec\.http\[0\]\.timeout: invalid duration "2 seconds"/));
    expect(messages).toContainEqual(expect.stringMatching(/a\.yaml:1:1 invalid; its previous valid version stays in force \(VirtualService default\/reviews\)/));
    expect(messages).toContainEqual(expect.stringMatching(/metadata\.name: must be a DNS-1123 name/));

    // Fixing it brings the new version in and clears the errors.
    writeFileSync(join(dir, 'a.yaml'), `${VS('3s')}---\n${DR('reviews', ['v1', 'v2'])}`);
    const fixed = src.load();
    expect(fixed.errors).toEqual([]);
    const vs3 = find(fixed, 'VirtualService/default/reviews')!;
    expect(isKind(vs3, 'VirtualService') && vs3.spec.http![0]!.timeout).toBe('3s');
  });

  it('drops objects removed from a file, and all objects of a deleted file', () => {
    writeFileSync(join(dir, 'a.yaml'), `${VS('2s')}---\n${DR('reviews', ['v1'])}`);
    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1']));
    const src = source();
    src.load();
    writeFileSync(join(dir, 'a.yaml'), VS('2s'));
    expect(keys(src.load())).toEqual(['DestinationRule/default/ratings', 'VirtualService/default/reviews']);
    unlinkSync(join(dir, 'a.yaml'));
    const r = src.load();
    expect(keys(r)).toEqual(['DestinationRule/default/ratings']);
    expect(r.errors).toEqual([]);
  });

  it('keeps the object in force against a duplicate that sorts first, and hands over when the original goes', () => {
    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1']));
    const src = source();
    expect(src.load().errors).toEqual([]);
    writeFileSync(join(dir, 'a.yaml'), DR('ratings', ['v2']));
    let r = src.load();
    expect(find(r, 'DestinationRule/default/ratings')!.source.file).toBe(join(dir, 'b.yaml'));
    expect(r.errors.map((e) => [e.file, e.path])).toEqual([[join(dir, 'a.yaml'), 'metadata.name']]);
    expect(r.errors[0]!.message).toBe(`duplicate DestinationRule default/ratings: the one at ${join(dir, 'b.yaml')}:4:9 stays in force (it was in force first); this one is ignored`);
    // An edit of the original keeps it in force; the newcomer stays ignored.
    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1', 'v3']));
    r = src.load();
    expect(find(r, 'DestinationRule/default/ratings')!.source.file).toBe(join(dir, 'b.yaml'));
    rmSync(join(dir, 'b.yaml'));
    r = src.load();
    expect(find(r, 'DestinationRule/default/ratings')!.source.file).toBe(join(dir, 'a.yaml'));
    expect(r.errors).toEqual([]);
    // At a cold start the first in path order wins, and says so.
    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1']));
    r = source().load();
    expect(find(r, 'DestinationRule/default/ratings')!.source.file).toBe(join(dir, 'a.yaml'));
    expect(r.errors[0]!.message).toMatch(/stays in force \(first in path order\)/);
  });
});

describe('FileConfigSource.watch', () => {
  it('reports added, changed, renamed and deleted files, in subdirectories too', async () => {
    writeFileSync(join(dir, 'a.yaml'), DR('reviews', ['v1']));
    const src = source();
    src.load();
    const seen: LoadResult[] = [];
    src.watch((r) => seen.push(r));
    const latest = () => seen[seen.length - 1];

    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1']));
    await waitFor('the new file', () => (latest() && find(latest()!, 'DestinationRule/default/ratings') ? true : undefined));

    writeFileSync(join(dir, 'a.yaml'), DR('reviews', ['v1', 'v2']));
    await waitFor('the change', () => {
      const dr = latest() && find(latest()!, 'DestinationRule/default/reviews');
      return dr && isKind(dr, 'DestinationRule') && dr.spec.subsets?.length === 2 ? true : undefined;
    });

    mkdirSync(join(dir, 'sub'));
    renameSync(join(dir, 'b.yaml'), join(dir, 'sub', 'b.yml'));
    await waitFor('the rename', () => (latest() && find(latest()!, 'DestinationRule/default/ratings')?.source.file === join(dir, 'sub', 'b.yml') ? true : undefined));

    writeFileSync(join(dir, 'sub', 'c.yaml'), VS('1s'));
    await waitFor('a file in a new subdirectory', () => (latest() && find(latest()!, 'VirtualService/default/reviews') ? true : undefined));

    unlinkSync(join(dir, 'a.yaml'));
    await waitFor('the deletion', () => (latest() && !find(latest()!, 'DestinationRule/default/reviews') ? true : undefined));
    expect(keys(latest()!)).toEqual(['DestinationRule/default/ratings', 'VirtualService/default/reviews']);
    expect(src.current()).toBe(latest());
  });

  it('re-reads only the files the watchers name, and still sees new files, replacements and a ConfigMap volume swap', async () => {
    // No poll: whatever is seen here came through the watch events alone.
    const src = new FileConfigSource(dir, { ...FAST, pollMs: 0 });
    sources.push(src);
    writeFileSync(join(dir, 'a.yaml'), DR('reviews', ['v1']));
    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1']));
    const first = src.load();
    const seen: LoadResult[] = [];
    src.watch((r) => seen.push(r));
    const latest = () => seen[seen.length - 1];
    const subsets = (r: LoadResult | undefined, key: string) => {
      const o = r && find(r, key);
      return o && isKind(o, 'DestinationRule') ? o.spec.subsets?.length : undefined;
    };

    // Replaced by write + rename, as editors do: only that file's objects are new.
    writeFileSync(join(dir, 'a.yaml.tmp'), DR('reviews', ['v1', 'v2']));
    renameSync(join(dir, 'a.yaml.tmp'), join(dir, 'a.yaml'));
    await waitFor('the replacement', () => (subsets(latest(), 'DestinationRule/default/reviews') === 2 ? true : undefined));
    expect(find(latest()!, 'DestinationRule/default/ratings')).toBe(find(first, 'DestinationRule/default/ratings'));

    writeFileSync(join(dir, 'c.yaml'), VS('2s'));
    await waitFor('a new file', () => (latest() && find(latest()!, 'VirtualService/default/reviews') ? true : undefined));

    // A ConfigMap volume: files are symlinks through `..data`, which is swapped in one rename.
    const cm = join(dir, 'cm');
    mkdirSync(join(cm, '..v1'), { recursive: true });
    writeFileSync(join(cm, '..v1', 'd.yaml'), DR('details', ['v1']));
    symlinkSync('..v1', join(cm, '..data'));
    symlinkSync(join('..data', 'd.yaml'), join(cm, 'd.yaml'));
    await waitFor('the ConfigMap file', () => (subsets(latest(), 'DestinationRule/default/details') === 1 ? true : undefined));
    mkdirSync(join(cm, '..v2'));
    writeFileSync(join(cm, '..v2', 'd.yaml'), DR('details', ['v1', 'v2', 'v3']));
    symlinkSync('..v2', join(cm, '..data_tmp'));
    renameSync(join(cm, '..data_tmp'), join(cm, '..data'));
    await waitFor('the ConfigMap swap', () => (subsets(latest(), 'DestinationRule/default/details') === 3 ? true : undefined));

    unlinkSync(join(dir, 'b.yaml'));
    await waitFor('the deletion', () => (latest() && !find(latest()!, 'DestinationRule/default/ratings') ? true : undefined));
  });

  it('keeps the last good objects while the directory is gone, and watches it again once it is back', async () => {
    writeFileSync(join(dir, 'a.yaml'), DR('reviews', ['v1']));
    const src = source();
    src.load();
    let last: LoadResult | undefined;
    src.watch((r) => (last = r));

    rmSync(dir, { recursive: true });
    const gone = await waitFor('the directory error', () => (last && last.errors.length > 0 ? last : undefined));
    expect(keys(gone)).toEqual(['DestinationRule/default/reviews']);

    mkdirSync(dir);
    writeFileSync(join(dir, 'b.yaml'), DR('ratings', ['v1']));
    // a.yaml did not come back with the directory: it is removed after the quiet period.
    await waitFor('the recreated directory', () => (last && last.errors.length === 0 && keys(last).join() === 'DestinationRule/default/ratings' ? last : undefined));

    writeFileSync(join(dir, 'c.yaml'), VS('1s'));
    await waitFor('a change in the recreated directory', () => (last && find(last, 'VirtualService/default/reviews') ? true : undefined));
  });

  it('reports a broken edit with its error while keeping the objects', async () => {
    writeFileSync(join(dir, 'a.yaml'), VS('2s'));
    const src = source();
    const first = src.load();
    let last: LoadResult | undefined;
    src.watch((r) => (last = r));
    writeFileSync(join(dir, 'a.yaml'), VS('[2s'));
    const r = await waitFor('the error', () => (last && last.errors.length > 0 ? last : undefined));
    expect(r.objects).toEqual(first.objects);
    expect(r.errors[0]!.message).toMatch(/^YAML syntax error/);
    expect(r.errors[0]!.line).toBeGreaterThanOrEqual(10);
  });
});
