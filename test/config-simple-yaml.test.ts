// The fast YAML reader (config/simple-yaml.ts) against yaml, the reference: whenever it reads a
// text, yaml must read the same documents from it without an error or warning, with the same root
// and list item positions; otherwise it must give up (and the loader falls back to yaml).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Composer, type Document, LineCounter, Parser, stringify } from 'yaml';
import { destinationRuleYaml, serviceEntryYaml, virtualServiceYaml } from '../bench/mesh.ts';
import { loadDirectory, parseConfigText } from '../control-plane/config/load.ts';
import { locateOffset } from '../control-plane/config/paths.ts';
import { LinePositions, readSimpleYaml } from '../control-plane/config/simple-yaml.ts';

const root = resolve(import.meta.dirname, '..');

function reference(text: string): { docs: Document.Parsed[]; lines: LineCounter } {
  const lines = new LineCounter();
  return { docs: [...new Composer({ lineCounter: lines }).compose(new Parser(lines.addNewLine).parse(text))], lines };
}

function eachList(value: unknown, path: (string | number)[], fn: (list: unknown[], path: (string | number)[]) => void): void {
  if (Array.isArray(value)) {
    fn(value, path);
    value.forEach((v, i) => eachList(v, [...path, i], fn));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) eachList(v, [...path, k], fn);
  }
}

/** Whether the fast reader read `text`; when it did, that it read what yaml reads. */
function agrees(text: string): boolean {
  const fast = readSimpleYaml(text);
  if (!fast) return false;
  const { docs, lines } = reference(text);
  const where = `in:\n${text}`;
  expect(docs.flatMap((d) => [...d.errors, ...d.warnings]).map((e) => e.message), where).toEqual([]);
  expect(fast.docs.length, where).toBe(docs.length);
  const positions = new LinePositions(text);
  fast.docs.forEach((d, i) => {
    const ref = docs[i]!;
    expect(d.value, where).toStrictEqual(ref.toJS());
    if (d.value === null) return;
    expect(d.start, where).toBe(ref.contents!.range![0]);
    expect(positions.at(d.start), where).toEqual(lines.linePos(d.start));
    eachList(d.value, [], (list, path) => {
      list.forEach((_, k) => {
        const offset = fast.itemStarts.get(list)?.[k];
        expect(offset, `${where}\nitem ${path.join('.')}[${k}]`).toBe(locateOffset(ref, [...path, k]));
        expect(positions.at(offset!), where).toEqual(lines.linePos(offset!));
      });
    });
  });
  return true;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(name) ? [full] : [];
  });
}

const repoFiles = ['test/golden/in', 'test/golden-inject', 'test/fixtures', 'examples', 'sidecar-config'].flatMap((d) => yamlFiles(join(root, d)));
const meshFiles = [serviceEntryYaml(7, 10, 0), serviceEntryYaml(300, 3, 5), destinationRuleYaml(7), virtualServiceYaml(7, 90)];

describe('the fast YAML reader', () => {
  it('reads the bench mesh and most of the repository\'s YAML, exactly as yaml does', () => {
    for (const text of meshFiles) expect(agrees(text), text).toBe(true);
    const read = repoFiles.filter((f) => agrees(readFileSync(f, 'utf8')));
    // Most rule files are plain YAML; the rest (block scalars, anchors, ...) go to yaml.
    expect(read.length).toBeGreaterThan(repoFiles.length / 2);
  });

  it('agrees with yaml or gives up on tricky texts', () => {
    const texts = [
      '', '# only a comment\n', '---\n', '---\n---\n', 'a: 1\n---\n', 'a: 1\n---\n# c\n---\nb: 2', '--- # c\na: 1\n', 'a: 1\n...\n',
      'a: 1\na: 2\n', 'a:\n- x\n- y\nb: 1\n', 'a:\n  - x\n  -  y\n', '- a: 1\n  b: 2\n- c\n', '- - x\n', '-\n  a: 1\n',
      'a: b: c\n', 'a: b:\n', 'a: "x": 1\n', 'a: x # c\nb: y#z\n', 'a: "x"#c\n', "a: 'it''s'\n", 'a: "q\\"x\\\\y\\n"\n', 'a: "\\u0041"\n',
      'a: [1, 2,]\n', 'a: {b: -}\n', 'a: [-, x]\n', 'a: [-]\n', 'a: {b: -x}\n', 'a: -}\n', 'a: [a: b]\n', 'a: {b: }\n', 'a: {b}\n', 'a: { b: [1, { c: d }], e: "f" }\n', 'a: [\n  1]\n', 'a: {"b": 1}\n',
      'a: 0o17\nb: 0x1F\nc: 017\nd: -0\ne: +5\nf: 1.50\ng: .5\nh: 1e3\ni: .inf\nj: -.Inf\nk: .NaN\nl: ~\nm: Null\nn: TRUE\no: yes\np: 1_000\n',
      'a: 10.0.0.1\nb: 5s\nc: http://x:80/y\nd: a,b\ne: -x\nf: --\ng: 1:2\n', '80: x\n', 'true: x\n', 'null: x\n', '~: x\n', '"a": 1\n',
      'a: &x 1\nb: *x\n', 'a: !!str 1\n', 'a: |\n  x\n', 'a: >\n  x\n', 'a: x\n  y\n', 'a:\n  x\n', 'a:\tb\n', 'a: b\r\nc: d\r\n',
      '  a: 1\n  b: 2\n', '  a: 1\nb: 2\n', 'a:\n    b: 1\n  c: 2\n', 'a:\n  b: 1\n   c: 2\n', '- a\n -b\n', 'key with spaces: v\n', 'a : 1\n',
      '__proto__: 1\n', '<<: {a: 1}\n', '? a\n: b\n', '%YAML 1.2\n---\na: 1\n', 'a: @x\n', 'a: `x`\n', 'a: [x\n', 'a: {x: y}}\n', 'a: ]\n',
      'a: "x\n  y"\n', "a: 'x\n  y'\n", '[1, 2]\n', '{a: 1}\n', 'plain\n', '"q"\n', 'a: - b\n', 'a: ? b\n', 'a: :b\n', 'a: x  \n', 'a:   \n',
      '\ufeffa: 1\n', 'a: \u00a0\nb: x\u00a0\nc: \u2028\nd: x\u0085y\n', '--- \u00a0\na: 1\n', '\u00a0a: 1\n', 'a:\u00a0b\n', 'a: 1\n\n\n# end\n', '#c\n  #c2\na: 1\n  # indented comment\nb: 2\n', 'a:\n# c\n  b: 1\n',
    ];
    for (const text of texts) agrees(text);
    // Nesting deeper than the stack: given up, not thrown.
    expect(readSimpleYaml(`a: ${'['.repeat(20000)}${']'.repeat(20000)}\n`)).toBeUndefined();
    // A few that must be read (the common forms).
    for (const text of ['a: 1\n', 'a:\n- x\n', '- a: 1\n  b: [x, y]\n', 'a: { b: c }\n']) expect(agrees(text), text).toBe(true);
  });

  it('agrees with yaml on what yaml writes from random values', () => {
    const key = fc.oneof(fc.constantFrom('a', 'name', 'x-y', 'a b', 'true', '1', 'null', 'k:v', '#k', '-k'), fc.string({ maxLength: 6 }));
    const scalar = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.double({ noNaN: false }), fc.boolean(), fc.constant(null),
      fc.constantFrom('10.0.0.1', '5s', 'a: b', 'x #y', "it's", 'say "hi"', '- x', '[x]', '{x}', '*', '&a', '0o7', '0x1F', '.5', '1e3', 'yes', '~', ''));
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(key, tie('node'), { maxKeys: 4 })),
    })).node;
    const options = fc.record({ collectionStyle: fc.constantFrom('any', 'block', 'flow'), indent: fc.integer({ min: 1, max: 4 }), indentSeq: fc.boolean(), lineWidth: fc.constantFrom(0, 20, 80) });
    fc.assert(fc.property(fc.array(fc.dictionary(key, value, { minKeys: 1, maxKeys: 5 }), { minLength: 1, maxLength: 3 }), options, (docs, o) => {
      agrees(docs.map((d) => stringify(d, o)).join('---\n'));
    }), { numRuns: 1500 });
  });

  it('agrees with yaml or gives up on rule files with a few random edits', () => {
    const texts = [...meshFiles, ...repoFiles.map((f) => readFileSync(f, 'utf8')).filter((t) => readSimpleYaml(t) !== undefined && t.length < 4000)];
    const more = fc.record({ at: fc.nat(), cut: fc.nat({ max: 3 }), put: fc.constantFrom(' ', ':', '-', '#', '"', "'", '[', ']', '{', '}', ',', '\n', '\n  ', '\n- ', 'a', '0', '.', '---\n', '\u00a0') });
    const edit = fc.record({ text: fc.constantFrom(...texts), more: fc.array(more, { maxLength: 2 }), at: fc.nat(), cut: fc.nat({ max: 3 }), put: fc.constantFrom('', ' ', '  ', ':', ': ', '-', '- ', '#', ' #', '"', "'", '[', ']', '{', '}', ',', '\n', '\n  ', 'a', '0', '.', '!', '&', '*', '|', '---\n', '\t', 'null', '1', '\u00a0', '\u2028', '\u0085', '\ufeff', 'é') });
    fc.assert(fc.property(edit, ({ text, more, at, cut, put }) => {
      let t = text;
      for (const e of [...more, { at, cut, put }]) {
        const i = e.at % (t.length + 1);
        t = t.slice(0, i) + e.put + t.slice(i + e.cut);
      }
      agrees(t);
    }), { numRuns: 4000 });
  });
});

describe('loading with the fast reader', () => {
  it('gives the same objects, positions and errors as yaml alone', () => {
    // A file the fast reader takes, and the same file with a tab in a last comment, which it leaves to yaml.
    const simple = `${virtualServiceYaml(3, 80)}---\n${destinationRuleYaml(3)}`;
    const viaYaml = `${simple}# a\ttab\n`;
    expect(readSimpleYaml(simple)).toBeDefined();
    expect(readSimpleYaml(viaYaml)).toBeUndefined();
    const a = parseConfigText('f.yaml', simple);
    const b = parseConfigText('f.yaml', viaYaml);
    expect(a.errors).toEqual([]);
    expect(a.objects.map((o) => ({ ...o, locate: undefined }))).toEqual(b.objects.map((o) => ({ ...o, locate: undefined })));
    for (const [x, y] of a.objects.map((o, i) => [o, b.objects[i]!] as const)) {
      for (const path of [[], ['spec', 'http', 0], ['spec', 'subsets', 1], ['spec', 'http', 0, 'route', 1, 'weight'], ['metadata', 'name'], ['spec', 'nope']]) {
        expect(x.locate(path), path.join('.')).toEqual(y.locate(path));
      }
    }
  });

  it('reports a document\'s errors from yaml\'s positions, as before', () => {
    const text = `${virtualServiceYaml(3, 80).replace('weight: 80', 'weight: 80, wieght: 1')}`;
    expect(readSimpleYaml(text)).toBeDefined();
    const r = parseConfigText('f.yaml', text);
    expect(r.objects).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ file: 'f.yaml', path: 'spec.http[0].route[0].wieght' });
  });

  it('loads the valid fixture tree without errors', () => {
    expect(loadDirectory(join(root, 'test/fixtures/config/valid')).errors).toEqual([]);
  });
});
