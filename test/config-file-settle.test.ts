// FileConfigSource and transient file states: a file truncated before it is rewritten, files
// deleted before they are recreated, a removed directory, a half-written file. No such state may
// take rules out of the mesh; only a state that lasts the quiet period counts as the operator's.
// Real files in a temp dir and the real watchers. The 50 ms and 10 ms gaps between writes are the
// scenarios themselves (what an editor or a script does), not waits for a result.
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileConfigSource, type FileSourceOptions } from '../control-plane/config/file-source.ts';
import { loadDirectory, parseConfigFile, parseConfigFileInSlices } from '../control-plane/config/load.ts';
import { type LoadResult, formatError, isKind } from '../control-plane/config/types.ts';

const DR = (name: string, subsets: string[], label = 'a') => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${name}
  labels: {edit: ${label}}
spec:
  host: ${name}
  subsets: [${subsets.map((s) => `{name: ${s}, labels: {version: ${s}}}`).join(', ')}]
`;

// 11 rules, as in the issue: a.yaml holds r0-r4, b.yaml r5-r9, c.yaml r10.
const NAMES = Array.from({ length: 11 }, (_, i) => `r${i}`);
const FILES: Record<string, string[]> = { 'a.yaml': NAMES.slice(0, 5), 'b.yaml': NAMES.slice(5, 10), 'c.yaml': NAMES.slice(10) };
const ALL_KEYS = NAMES.map((n) => `DestinationRule/default/${n}`).sort();
const fileText = (names: string[], label = 'a') => names.map((n) => DR(n, ['v1'], label)).join('---\n');

// The quiet period stays well above the scenarios' 50 ms gaps, and small enough for fast tests.
const QUIET_MS = 200;
const FAST: FileSourceOptions = { debounceMs: 5, settleMs: 20, quietMs: QUIET_MS };

let dir: string;
const sources: FileConfigSource[] = [];
const stops: (() => void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshpilot-settle-'));
});
afterEach(() => {
  for (const s of stops.splice(0)) s();
  for (const s of sources.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

const keys = (r: LoadResult) => r.objects.map((o) => o.key);
const labelOf = (r: LoadResult, name: string) => r.objects.find((o) => o.name === name)?.labels['edit'];
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeAll(label = 'a'): void {
  for (const [file, names] of Object.entries(FILES)) writeFileSync(join(dir, file), fileText(names, label));
}

/** A watching source, with every result it hands out: through the callback, and current() sampled every 2 ms. */
function watched(opts: FileSourceOptions = FAST) {
  const src = new FileConfigSource(dir, opts);
  sources.push(src);
  src.load();
  const seen: LoadResult[] = [];
  src.watch((r) => seen.push(r));
  const timer = setInterval(() => seen.push(src.current()), 2);
  stops.push(() => clearInterval(timer));
  return { src, seen };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(5);
  }
}

/** Results that lack some of the 11 rules. */
const missingAny = (seen: LoadResult[]) => seen.filter((r) => ALL_KEYS.some((k) => !keys(r).includes(k)));

describe('FileConfigSource and transient file states', () => {
  it('keeps every rule in force while a file is truncated and rewritten 50 ms later, and keeps their identities', async () => {
    writeAll();
    const { src, seen } = watched();
    const before = src.current();
    expect(keys(before)).toEqual(ALL_KEYS);
    for (let round = 0; round < 3; round++) {
      writeFileSync(join(dir, 'a.yaml'), ''); // truncate, as `>` or an in-place save does
      await pause(50);
      writeFileSync(join(dir, 'a.yaml'), fileText(FILES['a.yaml']!)); // the same rules again
      // A marker edit after the rewrite: once it shows, the rewrite has been taken too.
      writeFileSync(join(dir, 'c.yaml'), fileText(FILES['c.yaml']!, `m${round}`));
      await waitFor('the marker edit', () => labelOf(src.current(), 'r10') === `m${round}`);
    }
    expect(missingAny(seen)).toEqual([]);
    const after = src.current();
    for (const n of FILES['a.yaml']!) expect(after.objects.find((o) => o.name === n)).toBe(before.objects.find((o) => o.name === n));
  });

  it('keeps every rule in force while files are deleted one by one 10 ms apart and recreated', async () => {
    writeAll();
    const { src, seen } = watched();
    for (const file of Object.keys(FILES)) {
      unlinkSync(join(dir, file));
      await pause(10);
    }
    writeAll('b'); // recreated, each rule with a new label so that we can see it taken
    await waitFor('the recreated files', () => NAMES.every((n) => labelOf(src.current(), n) === 'b'));
    expect(missingAny(seen)).toEqual([]);
  });

  it('removes every rule once the files stay deleted for the quiet period, every time', async () => {
    for (let round = 0; round < 3; round++) {
      writeAll();
      const { src, seen } = watched();
      for (const file of Object.keys(FILES)) {
        unlinkSync(join(dir, file));
        await pause(10);
      }
      await waitFor('every rule removed', () => src.current().objects.length === 0);
      expect(src.current().errors).toEqual([]);
      expect(src.health().ok).toBe(true);
      // Deleting is not a transient state that can resurrect anything: no rule comes back.
      expect(seen.slice(seen.findIndex((r) => r.objects.length === 0)).every((r) => r.objects.length === 0)).toBe(true);
      for (const s of stops.splice(0)) s();
      for (const s of sources.splice(0)) s.close();
    }
  });

  it('keeps every rule and reports the directory while the root directory is removed (rm -rf), every time', async () => {
    for (let round = 0; round < 4; round++) {
      dir = mkdtempSync(join(tmpdir(), 'meshpilot-settle-'));
      writeAll();
      const { src, seen } = watched();
      if (round % 2 === 1) {
        // A slower rm -rf (a big tree): the files go one by one before the directory does.
        for (const file of Object.keys(FILES)) {
          unlinkSync(join(dir, file));
          await pause(10);
        }
      }
      rmSync(dir, { recursive: true, force: true });
      await waitFor('the directory error', () => !src.health().ok && src.current().errors.some((e) => e.file === dir));
      // Nothing to wait on for an absence: watch through twice the quiet period.
      await pause(2 * QUIET_MS);
      expect(missingAny(seen)).toEqual([]);
      expect(src.health().detail).toContain(dir);
      for (const s of stops.splice(0)) s();
      for (const s of sources.splice(0)) s.close();
    }
  });

  it('keeps the good rules when a truncation is followed by a syntax error, and takes the fix', async () => {
    writeAll();
    const { src, seen } = watched();
    const before = src.current();
    writeFileSync(join(dir, 'a.yaml'), '');
    await pause(50);
    writeFileSync(join(dir, 'a.yaml'), `${fileText(FILES['a.yaml']!)}  subsets: [{name: v2\n`);
    await waitFor('the syntax error', () => src.current().errors.some((e) => e.message.startsWith('YAML syntax error')));
    const broken = src.current();
    expect(broken.errors.map(formatError)).toContainEqual(expect.stringMatching(/a\.yaml:\d+:\d+ the file's previous 5 objects stay in force until it parses again/));
    for (const n of FILES['a.yaml']!) expect(broken.objects.find((o) => o.name === n)).toBe(before.objects.find((o) => o.name === n));
    // The truncated state must not come back as "last good" after its quiet period.
    await pause(2 * QUIET_MS);
    expect(missingAny(seen)).toEqual([]);

    writeFileSync(join(dir, 'a.yaml'), fileText(FILES['a.yaml']!, 'fixed'));
    await waitFor('the fix', () => labelOf(src.current(), 'r0') === 'fixed');
    expect(src.current().errors).toEqual([]);
    expect(missingAny(seen)).toEqual([]);
  });

  it('applies added and changed rules at once while a removal waits for the quiet period', async () => {
    writeAll();
    // A quiet period far longer than the wait below: whatever shows came without it.
    const { src } = watched({ ...FAST, quietMs: 60_000 });
    writeFileSync(join(dir, 'c.yaml'), `${DR('r10', ['v1', 'v2'])}---\n${DR('extra', ['v1'])}`);
    writeFileSync(join(dir, 'b.yaml'), fileText(FILES['b.yaml']!.slice(1))); // r5 removed
    await waitFor('the edit', () => {
      const r10 = src.current().objects.find((o) => o.name === 'r10');
      return !!r10 && isKind(r10, 'DestinationRule') && r10.spec.subsets?.length === 2 && keys(src.current()).includes('DestinationRule/default/extra');
    });
    expect(keys(src.current())).toContain('DestinationRule/default/r5');
    // An explicit load() takes the files as they are, removal included.
    expect(keys(src.load())).not.toContain('DestinationRule/default/r5');
  });

  it('ends with exactly the files as they end up, after any sequence of bad edits and fixes', async () => {
    writeAll();
    const { src } = watched();
    // A fixed pseudo-random sequence of transient and bad states, a few ms apart.
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const bad = [
      () => '',
      () => 'kind: [DestinationRule\n',
      () => DR('Bad_Name', ['v1']),
      () => fileText(['r0', 'r1'], 'partial'),
    ];
    for (let i = 0; i < 30; i++) {
      const file = join(dir, Object.keys(FILES)[rand(3)]!);
      const op = rand(bad.length + 1);
      if (op === bad.length) rmSync(file, { force: true });
      else writeFileSync(file, bad[op]!());
      await pause(rand(30));
    }
    // The end state: a.yaml gone, b.yaml with fewer rules, c.yaml changed.
    rmSync(join(dir, 'a.yaml'), { force: true });
    writeFileSync(join(dir, 'b.yaml'), fileText(['r5', 'r6'], 'end'));
    writeFileSync(join(dir, 'c.yaml'), fileText(['r10', 'r11'], 'end'));
    const expected = loadDirectory(dir);
    expect(expected.errors).toEqual([]);
    const same = (r: LoadResult) => JSON.stringify(r.objects.map((o) => [o.key, o.labels, o.spec])) === JSON.stringify(expected.objects.map((o) => [o.key, o.labels, o.spec]));
    await waitFor('the final state', () => same(src.current()) && src.current().errors.length === 0);
  });

  it('does not read a file over the size limit, names the file and the limit, and keeps its rules', async () => {
    writeAll();
    const { src, seen } = watched({ ...FAST, maxFileBytes: 4096 });
    const big = `${fileText(FILES['a.yaml']!)}# ${'x'.repeat(5000)}\n`;
    writeFileSync(join(dir, 'a.yaml'), big);
    await waitFor('the size error', () => src.current().errors.length > 0);
    expect(src.current().errors.map(formatError)).toEqual([
      `${join(dir, 'a.yaml')}:1:1 file is ${Buffer.byteLength(big)} bytes, over the 4 KiB limit for a rule file; its previous 5 objects stay in force`,
    ]);
    expect(missingAny(seen)).toEqual([]);

    // The one-shot load (`meshpilot validate`) has the same limit, 4 MiB by default.
    writeFileSync(join(dir, 'a.yaml'), `# ${'x'.repeat(4 * 1024 * 1024)}\n`);
    const once = loadDirectory(dir);
    expect(once.errors.map(formatError)).toEqual([`${join(dir, 'a.yaml')}:1:1 file is ${4 * 1024 * 1024 + 3} bytes, over the 4 MiB limit for a rule file`]);
  });
});

describe('parsing a big file in slices', () => {
  const text = Array.from({ length: 300 }, (_, i) => DR(`r${i}`, ['v1', 'v2'])).join('---\n');
  const plain = (p: ReturnType<typeof parseConfigFile>) => JSON.stringify(p, (k, v) => (k === 'locate' ? undefined : v));

  it('gives the same documents, errors and positions as the one-shot parse', async () => {
    const bad = `${text}---\n${DR('Bad_Name', ['v1'])}---\nkind: [x\n`;
    for (const t of [text, bad, `${text}---\n${DR('Bad_Name', ['v1'])}`, '', '---\n']) {
      expect(plain(await parseConfigFileInSlices('/f.yaml', t, 0))).toEqual(plain(parseConfigFile('/f.yaml', t)));
    }
    const broken = await parseConfigFileInSlices('/f.yaml', bad, 0);
    expect(broken.syntaxErrors[0]!.line).toBeGreaterThanOrEqual(bad.split('\n').length - 1); // the line of `kind: [x`, or the end
  });

  it('lets other work run while it parses', async () => {
    let turns = 0;
    let parsing = true;
    const tick = (): void => {
      if (!parsing) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const parsed = await parseConfigFileInSlices('/f.yaml', text, 0);
    parsing = false;
    expect(parsed.documents.filter((d) => d.object)).toHaveLength(300);
    expect(turns).toBeGreaterThan(100);
  });
});
