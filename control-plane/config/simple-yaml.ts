// A fast reader for the plain YAML rule files are almost always written in, so that start-up does
// not spend most of its time in the general YAML parser (about 0.5 ms per small file; 3,000 files
// took 2-3 s of a 1,000-service mesh's start). It reads only this subset: block maps and block
// sequences (compact forms included), flow maps and sequences closed on their line, plain and
// single-line quoted scalars (the core schema's null, bool, int and float, else strings), comments
// and `---` document markers. Anything else (anchors, aliases, tags, block scalars, multi-line
// scalars or flow collections, complex or non-string keys, duplicate keys, tabs, CR, odd
// indentation, ...) gives undefined and the caller parses the file with the `yaml` package,
// which stays the reference: what this reads must be exactly what `yaml` reads (values, document
// count, node positions). test/config-simple-yaml.test.ts compares the two.

/** One document: its value (null for an empty one) and the offset of its root node. */
export interface SimpleDocument {
  value: unknown;
  start: number;
}

export interface SimpleYaml {
  docs: SimpleDocument[];
  /** The offset of each item of each sequence read, by the array it became. */
  itemStarts: WeakMap<readonly unknown[], number[]>;
}

const BAIL = new Error('not simple YAML');

// Control characters other than newline, CR, BOM and tabs all send a file to the full parser.
const UNSUPPORTED_CHARS = /[\u0000-\u0009\u000b-\u001f\u007f\ufeff]|\r/;

/** The file's documents, or undefined when it uses more of YAML than this reads. */
export function readSimpleYaml(text: string): SimpleYaml | undefined {
  if (UNSUPPORTED_CHARS.test(text)) return undefined;
  try {
    return new Reader(text).read();
  } catch {
    // BAIL, or anything else (a nesting too deep for the stack): yaml reads it, as before.
    return undefined;
  }
}

/** 1-based line and column of offsets in a text, as yaml's LineCounter gives them (LF line ends). */
export class LinePositions {
  private starts: number[] | undefined;

  constructor(private readonly text: string) {}

  at(offset: number): { line: number; col: number } {
    if (!this.starts) {
      this.starts = [0];
      for (let i = this.text.indexOf('\n'); i !== -1; i = this.text.indexOf('\n', i + 1)) this.starts.push(i + 1);
    }
    // The last line start at or before offset.
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.starts[lo]! + 1 };
  }
}

// The core schema's plain scalars, tested in the order yaml tests them.
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;
/** Plain scalars that can only be strings (most of them): no test above can match. */
const SURELY_STRING = /^[A-EG-MO-SU-Za-eg-mo-su-z_/]/;

function plainValue(s: string): unknown {
  if (SURELY_STRING.test(s)) return s;
  if (NULL.test(s)) return null;
  if (BOOL.test(s)) return s[0] === 't' || s[0] === 'T';
  if (INT_OCT.test(s)) return parseInt(s.substring(2), 8);
  if (INT.test(s)) return parseInt(s, 10);
  if (INT_HEX.test(s)) return parseInt(s.substring(2), 16);
  if (FLOAT_NAN.test(s)) return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity;
  if (FLOAT_EXP.test(s) || FLOAT.test(s)) return parseFloat(s);
  return s;
}

const SPACE = 32;
const HASH = 35;
const COLON = 58;
const DASH = 45;

/** Characters that may not start a plain scalar here (indicators; `-` is checked on its own). */
const NOT_PLAIN_START = new Set('?:,[]{}#&*!|>\'"%@`'.split('').map((c) => c.charCodeAt(0)));
const FLOW_END = new Set(',[]{}'.split('').map((c) => c.charCodeAt(0)));

interface Line {
  start: number;
  /** Offset of the first non-space character. */
  content: number;
  end: number;
}

class Reader {
  private lines: Line[] = [];
  /** The line being read, and where on it reading resumes (after a compact `- `). */
  private li = 0;
  private readonly itemStarts = new WeakMap<readonly unknown[], number[]>();

  constructor(private readonly text: string) {}

  read(): SimpleYaml {
    const { text } = this;
    // Documents as yaml counts them: text before the first `---` is one if it holds content, and
    // every `---` starts one, empty or not.
    const segments: Line[][] = [[]];
    let marked = false;
    for (let start = 0; start < text.length;) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      let content = start;
      while (content < end && text.charCodeAt(content) === SPACE) content++;
      const first = text.charCodeAt(content);
      if (content === start && text.startsWith('---', start)) {
        let r = start + 3;
        while (r < end && text.charCodeAt(r) === SPACE) r++;
        if (end > start + 3 && text.charCodeAt(start + 3) !== SPACE) throw BAIL;
        if (r < end && text.charCodeAt(r) !== HASH) throw BAIL;
        if (!marked && segments[0]!.length === 0) segments.pop();
        segments.push([]);
        marked = true;
      } else if (content === start && (text.startsWith('...', start) || first === 37 /* % */)) {
        throw BAIL;
      } else if (content < end && first !== HASH) {
        segments[segments.length - 1]!.push({ start, content, end });
      }
      start = end + 1;
    }
    if (!marked && segments[0]!.length === 0) segments.pop();
    const docs = segments.map((lines) => this.document(lines));
    return { docs, itemStarts: this.itemStarts };
  }

  private document(lines: Line[]): SimpleDocument {
    if (lines.length === 0) return { value: null, start: -1 };
    this.lines = lines;
    this.li = 0;
    const first = lines[0]!;
    // The root must be a block map or sequence (a scalar or flow root goes to the full parser).
    const c = this.text.charCodeAt(first.content);
    if (c === 91 || c === 123 || c === 34 || c === 39) throw BAIL;
    const value = this.block(first.content - first.start);
    if (this.li < lines.length) throw BAIL;
    return { value, start: first.content };
  }

  private get line(): Line | undefined {
    return this.lines[this.li];
  }

  private indentOf(l: Line): number {
    return l.content - l.start;
  }

  private isSeqItem(at: number, end: number): boolean {
    return this.text.charCodeAt(at) === DASH && (at + 1 === end || this.text.charCodeAt(at + 1) === SPACE);
  }

  /** A block map or sequence whose first line is the current one, at `indent`. */
  private block(indent: number): unknown {
    const l = this.line!;
    return this.isSeqItem(l.content, l.end) ? this.blockSeq(indent) : this.blockMap(indent, l.content);
  }

  /**
   * The offset of the `:` ending a block map key that starts at `at`, or -1 when the line is not a
   * `key: value` line. Throws for a key this does not read.
   */
  private keyEnd(at: number, end: number): number {
    const { text } = this;
    for (let j = at; j < end; j++) {
      const c = text.charCodeAt(j);
      if (c === COLON && (j + 1 === end || text.charCodeAt(j + 1) === SPACE)) return j;
      if (c === HASH && text.charCodeAt(j - 1) === SPACE) return -1;
    }
    return -1;
  }

  /** A block map; its first key starts at `at` on the current line (the map's column is `indent`). */
  private blockMap(indent: number, at: number): Record<string, unknown> {
    const { text } = this;
    const map: Record<string, unknown> = {};
    for (;;) {
      const l = this.line!;
      const colon = this.keyEnd(at, l.end);
      if (colon < 0) throw BAIL;
      const key = this.key(at, colon);
      if (Object.prototype.hasOwnProperty.call(map, key)) throw BAIL; // yaml: "Map keys must be unique"
      let q = colon + 1;
      while (q < l.end && text.charCodeAt(q) === SPACE) q++;
      if (q === l.end || text.charCodeAt(q) === HASH) {
        this.li++;
        const next = this.line;
        if (next && this.indentOf(next) > indent) map[key] = this.block(this.indentOf(next));
        else if (next && this.indentOf(next) === indent && this.isSeqItem(next.content, next.end)) map[key] = this.blockSeq(indent);
        else map[key] = null;
      } else {
        map[key] = this.inlineValue(q, l.end);
        this.li++;
      }
      const next = this.line;
      if (!next || this.indentOf(next) < indent) return map;
      if (this.indentOf(next) > indent || this.isSeqItem(next.content, next.end)) throw BAIL;
      at = next.content;
    }
  }

  private key(at: number, colon: number): string {
    const c = this.text.charCodeAt(at);
    if (NOT_PLAIN_START.has(c) || c === DASH || colon - at > 1000) throw BAIL;
    const key = this.text.slice(at, colon);
    // Only keys that are strings as they stand (not `80`, `true`, `null`: yaml would stringify them).
    if (key.endsWith(' ') || key === '__proto__' || key.startsWith('<<') || typeof plainValue(key) !== 'string') throw BAIL;
    return key;
  }

  private blockSeq(indent: number): unknown[] {
    const { text } = this;
    const items: unknown[] = [];
    const starts: number[] = [];
    for (;;) {
      const l = this.line!;
      let p = l.content + 1;
      while (p < l.end && text.charCodeAt(p) === SPACE) p++;
      if (p === l.end || text.charCodeAt(p) === HASH || this.isSeqItem(p, l.end)) throw BAIL;
      starts.push(p);
      const c = text.charCodeAt(p);
      const compactMap = c !== 91 && c !== 123 && c !== 34 && c !== 39 && this.keyEnd(p, l.end) >= 0;
      if (compactMap) {
        items.push(this.blockMap(p - l.start, p));
      } else {
        items.push(this.inlineValue(p, l.end));
        this.li++;
      }
      const next = this.line;
      if (!next || this.indentOf(next) < indent) break;
      if (this.indentOf(next) > indent) throw BAIL;
      if (!this.isSeqItem(next.content, next.end)) break; // the rest of a map holding this sequence
    }
    this.itemStarts.set(items, starts);
    return items;
  }

  /** A scalar or flow collection from `at` that must end the line (a comment may follow). */
  private inlineValue(at: number, end: number): unknown {
    const { text } = this;
    const c = text.charCodeAt(at);
    let value: unknown;
    let q: number;
    if (c === 91 || c === 123 || c === 34 || c === 39) {
      [value, q] = this.flowValue(at, end);
    } else {
      if (NOT_PLAIN_START.has(c) || (c === DASH && (at + 1 === end || text.charCodeAt(at + 1) === SPACE))) throw BAIL;
      q = at;
      while (q < end && !(text.charCodeAt(q) === HASH && text.charCodeAt(q - 1) === SPACE)) q++;
      let e = q;
      while (e > at && text.charCodeAt(e - 1) === SPACE) e--; // YAML's white space is ASCII only (not String.trim's)
      const raw = text.slice(at, e);
      // `a: b: c` and a trailing `:` are errors for yaml.
      if (raw.includes(': ') || raw.endsWith(':')) throw BAIL;
      return plainValue(raw);
    }
    while (q < end && text.charCodeAt(q) === SPACE) q++;
    if (q < end && !(text.charCodeAt(q) === HASH && text.charCodeAt(q - 1) === SPACE)) throw BAIL;
    return value;
  }

  /** A flow collection or quoted scalar at `at`, closed before `end`: [value, offset after it]. */
  private flowValue(at: number, end: number): [unknown, number] {
    const { text } = this;
    const c = text.charCodeAt(at);
    if (c === 34) return this.doubleQuoted(at, end);
    if (c === 39) return this.singleQuoted(at, end);
    if (c === 91) {
      const items: unknown[] = [];
      const starts: number[] = [];
      let p = this.skipSpaces(at + 1, end);
      if (text.charCodeAt(p) === 93) {
        this.itemStarts.set(items, starts);
        return [items, p + 1];
      }
      for (;;) {
        starts.push(p);
        const [v, after] = this.flowItem(p, end);
        items.push(v);
        p = this.skipSpaces(after, end);
        const d = text.charCodeAt(p);
        if (d === 93) {
          this.itemStarts.set(items, starts);
          return [items, p + 1];
        }
        if (d !== 44) throw BAIL;
        p = this.skipSpaces(p + 1, end);
        if (text.charCodeAt(p) === 93) throw BAIL; // trailing comma
      }
    }
    if (c === 123) {
      const map: Record<string, unknown> = {};
      let p = this.skipSpaces(at + 1, end);
      if (text.charCodeAt(p) === 125) return [map, p + 1];
      for (;;) {
        const [raw, keyAfter] = this.flowPlain(p, end);
        if (text.charCodeAt(keyAfter) !== COLON) throw BAIL;
        const key = this.key(p, keyAfter);
        if (key !== raw || Object.prototype.hasOwnProperty.call(map, key)) throw BAIL;
        p = this.skipSpaces(keyAfter + 1, end);
        const [v, after] = this.flowItem(p, end);
        map[key] = v;
        p = this.skipSpaces(after, end);
        const d = text.charCodeAt(p);
        if (d === 125) return [map, p + 1];
        if (d !== 44) throw BAIL;
        p = this.skipSpaces(p + 1, end);
        if (text.charCodeAt(p) === 125) throw BAIL; // trailing comma
      }
    }
    throw BAIL;
  }

  /** A value inside a flow collection: nested collection, quoted or plain scalar. */
  private flowItem(p: number, end: number): [unknown, number] {
    const c = this.text.charCodeAt(p);
    if (c === 91 || c === 123 || c === 34 || c === 39) return this.flowValue(p, end);
    const [raw, after] = this.flowPlain(p, end);
    // `[a: b]` (a one-pair map) and `{a: }` (an empty value) are not read here.
    if (raw === '' || this.text.charCodeAt(after) === COLON) throw BAIL;
    return [plainValue(raw), after];
  }

  /** A plain scalar in a flow collection: its text (trimmed) and the offset where it stopped. */
  private flowPlain(p: number, end: number): [string, number] {
    const { text } = this;
    const c = text.charCodeAt(p);
    // A `-` may start one only before a character that is neither space nor a flow indicator.
    if (NOT_PLAIN_START.has(c) || (c === DASH && (p + 1 === end || text.charCodeAt(p + 1) === SPACE || FLOW_END.has(text.charCodeAt(p + 1))))) throw BAIL;
    let q = p;
    for (; q < end; q++) {
      const d = text.charCodeAt(q);
      if (FLOW_END.has(d)) break;
      if (d === COLON) {
        const n = text.charCodeAt(q + 1);
        if (q + 1 === end || n === SPACE || FLOW_END.has(n)) break;
      }
      if (d === HASH && text.charCodeAt(q - 1) === SPACE) throw BAIL;
    }
    if (q === end) throw BAIL; // a flow collection going on past its line
    let e = q;
    while (e > p && text.charCodeAt(e - 1) === SPACE) e--;
    return [text.slice(p, e), q];
  }

  private doubleQuoted(at: number, end: number): [string, number] {
    const { text } = this;
    let out = '';
    let from = at + 1;
    for (let q = at + 1; q < end; q++) {
      const c = text.charCodeAt(q);
      if (c === 34) return [out + text.slice(from, q), q + 1];
      if (c !== 92) continue;
      const e = text[q + 1];
      const unescaped = e === '\\' ? '\\' : e === '"' ? '"' : e === '/' ? '/' : e === 'n' ? '\n' : e === 't' ? '\t' : undefined;
      if (unescaped === undefined) throw BAIL;
      out += text.slice(from, q) + unescaped;
      q++;
      from = q + 1;
    }
    throw BAIL; // goes on to the next line
  }

  private singleQuoted(at: number, end: number): [string, number] {
    const { text } = this;
    let out = '';
    let from = at + 1;
    for (let q = at + 1; q < end; q++) {
      if (text.charCodeAt(q) !== 39) continue;
      if (text.charCodeAt(q + 1) === 39) {
        out += text.slice(from, q + 1);
        q++;
        from = q + 1;
        continue;
      }
      return [out + text.slice(from, q), q + 1];
    }
    throw BAIL;
  }

  private skipSpaces(p: number, end: number): number {
    while (p < end && this.text.charCodeAt(p) === SPACE) p++;
    if (p === end) throw BAIL; // a flow collection going on past its line
    return p;
  }
}
