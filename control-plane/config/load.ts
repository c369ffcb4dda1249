// Reads Istio objects from YAML text and directories: YAML parse (with positions), envelope checks
// (apiVersion, kind, metadata), zod validation of the spec, and duplicate detection.
import { closeSync, fstatSync, openSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Composer, type Document, LineCounter, Parser, isScalar } from 'yaml';
import { deepFreeze } from '../json.ts';
import { problemsFromIssues } from './issues.ts';
import { type FieldPath, formatPath, locate } from './paths.ts';
import { API_VERSIONS, documentSchemas, KIND_API_VERSIONS } from './schemas/document.ts';
import { isRecord } from './schemas/common.ts';
import { LinePositions, readSimpleYaml, type SimpleYaml } from './simple-yaml.ts';
import { type ConfigError, type ConfigObject, KINDS, type Kind, type LoadResult, type SourcePos } from './types.ts';

/** One YAML document of a file, after validation. */
export interface ParsedDocument {
  source: SourcePos;
  /** Set when the document is a valid object. */
  object?: ConfigObject;
  /** `${kind}/${namespace}/${name}` whenever kind and name could be read, valid or not. */
  key?: string;
  errors: ConfigError[];
}

/** One file, parsed. With YAML syntax errors, `documents` is empty: nothing in the file is trusted. */
export interface ParsedFile {
  file: string;
  syntaxErrors: ConfigError[];
  documents: ParsedDocument[];
}

/** What one file contributes to the mesh. */
export interface FileContribution {
  file: string;
  objects: readonly ConfigObject[];
  errors: readonly ConfigError[];
}

const MAX_ALIASES = 100; // guards against alias ("billion laughs") expansion

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

function isEmptyDocument(doc: Document): boolean {
  const c = doc.contents;
  return c === null || (isScalar(c) && (c.value === null || c.value === undefined));
}

function stringField(v: unknown, field: string): string | undefined {
  return isRecord(v) && typeof v[field] === 'string' ? (v[field] as string) : undefined;
}

/** Parses one file's text into validated documents, each with its errors. Never throws. */
export function parseConfigFile(file: string, text: string): ParsedFile {
  const steps = parseSteps(file, text);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * parseConfigFile, giving the event loop a turn after every `sliceMs` of work: a big file (up to
 * the size limit, thousands of documents) then does not stall the xDS streams while it is parsed.
 */
export async function parseConfigFileInSlices(file: string, text: string, sliceMs = 10): Promise<ParsedFile> {
  const steps = parseSteps(file, text);
  let sliceStart = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart < sliceMs) continue;
    await new Promise<void>((resolve) => setImmediate(resolve));
    sliceStart = performance.now();
  }
}

/**
 * The parse, pausing (yield) after each YAML document it reads and each one it validates. Plain
 * YAML (simple-yaml.ts) is read by a fast reader; when that gives up, or a document has errors
 * (whose positions and messages come from the full parse), the file is read as yaml's
 * parseAllDocuments does (same Parser, Composer and line counter), one document at a time.
 */
function* parseSteps(file: string, text: string): Generator<void, ParsedFile, void> {
  const simple = readSimpleYaml(text);
  if (simple) {
    const clean = yield* simpleDocuments(file, text, simple);
    if (clean) return { file, syntaxErrors: [], documents: clean };
  }
  const trees: FileTrees = { docs: [], lineCounter: new LineCounter() };
  const { docs, lineCounter } = trees;
  try {
    for (const doc of composeDocuments(text, lineCounter)) {
      docs.push(doc);
      yield;
    }
  } catch (e) {
    return { file, syntaxErrors: [{ file, line: 1, col: 1, path: '', message: `YAML syntax error: ${String(e)}`, wholeFile: true }], documents: [] };
  }

  const syntaxErrors: ConfigError[] = [];
  for (const doc of docs) {
    for (const [prefix, list] of [['YAML syntax error', doc.errors], ['YAML problem', doc.warnings]] as const) {
      for (const e of list) {
        const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
        syntaxErrors.push({ file, line: pos.line, col: pos.col, path: '', message: `${prefix}: ${firstLine(e.message)}`, wholeFile: true });
      }
    }
  }
  if (syntaxErrors.length > 0) return { file, syntaxErrors, documents: [] };

  const documents: ParsedDocument[] = [];
  const positions = new FilePositions(file, text, trees);
  for (const [index, doc] of docs.entries()) {
    if (isEmptyDocument(doc)) continue;
    documents.push(parseDocument(file, () => doc.toJS({ maxAliasCount: MAX_ALIASES }), treeLocator(doc, lineCounter, file), laterLocator(positions, index)));
    yield;
  }
  return { file, syntaxErrors, documents };
}

/**
 * The documents of a file the fast reader read, validated; undefined as soon as one has an error
 * (the full parse then reports them all, with its positions).
 */
function* simpleDocuments(file: string, text: string, simple: SimpleYaml): Generator<void, ParsedDocument[] | undefined, void> {
  const positions = new FilePositions(file, text);
  const lines = new LinePositions(text);
  const documents: ParsedDocument[] = [];
  for (const [index, doc] of simple.docs.entries()) {
    if (doc.value === null) continue;
    let parsed: ParsedDocument;
    try {
      parsed = parseDocument(file, () => doc.value, simpleLocator(simple, doc, lines, file), laterLocator(positions, index));
    } catch (e) {
      if (e === NOT_LOCATED) return undefined;
      throw e;
    }
    if (parsed.errors.length > 0) return undefined;
    documents.push(parsed);
    yield;
  }
  return documents;
}

// The locators are made in functions of their own: a closure shares its scope with every other
// closure made in the same function, and one kept by an object (`later`) must not keep a parse tree.

function treeLocator(doc: Document, lineCounter: LineCounter, file: string): (path: FieldPath, atKey?: boolean) => SourcePos {
  return (path, atKey = false) => locate(doc, lineCounter, file, path, atKey);
}

function laterLocator(positions: FilePositions, index: number): (path: FieldPath) => SourcePos {
  return (path) => positions.locate(index, path);
}

/** Thrown by simpleLocator for a position it does not have: the file is then read by yaml. */
const NOT_LOCATED = new Error('position not kept by the fast reader');

/**
 * Positions in a document the fast reader read: its root and its list items, what a valid object
 * keeps (its source and origins). Any other position is asked for an error, which the full parse
 * reports, so the fast reading is given up (NOT_LOCATED).
 */
function simpleLocator(simple: SimpleYaml, doc: SimpleYaml['docs'][number], lines: LinePositions, file: string): (path: FieldPath, atKey?: boolean) => SourcePos {
  return (path, atKey = false) => {
    let offset: number | undefined = path.length === 0 ? doc.start : undefined;
    if (path.length > 0 && typeof path[path.length - 1] === 'number' && !atKey) {
      let node: unknown = doc.value;
      for (let i = 0; i < path.length - 1 && node !== undefined; i++) node = isRecord(node) || Array.isArray(node) ? (node as Record<string | number, unknown>)[path[i]!] : undefined;
      if (Array.isArray(node)) offset = simple.itemStarts.get(node)?.[path[path.length - 1] as number];
    }
    if (offset === undefined) throw NOT_LOCATED;
    return { file, ...lines.at(offset) };
  };
}

/** A file's YAML documents as yaml's parseAllDocuments reads them. */
function composeDocuments(text: string, lineCounter: LineCounter): Generator<Document.Parsed> {
  const composer = new Composer({ lineCounter, prettyErrors: true });
  return composer.compose(new Parser(lineCounter.addNewLine).parse(text));
}

interface FileTrees {
  docs: Document[];
  lineCounter: LineCounter;
}

/**
 * Positions in one file, for the objects read from it (`ConfigObject.locate`). The parse trees (a
 * node with its range for every key and value, about 15 KB for a small ServiceEntry) would be most
 * of what a loaded mesh keeps, so only the text is kept and the file is parsed again when a
 * position is asked for: same text, same parser, same positions. The trees of the last few files
 * asked about (or just read) stay at hand, since findings come in bursts per file: a duplicate
 * right after the parse, a compile's issues, an explain's origins.
 */
class FilePositions {
  constructor(private readonly file: string, private readonly text: string, trees?: FileTrees) {
    if (trees) recentTrees.remember(this, trees);
  }

  locate(index: number, path: FieldPath): SourcePos {
    let trees = recentTrees.get(this);
    if (!trees) {
      trees = { docs: [], lineCounter: new LineCounter() };
      for (const doc of composeDocuments(this.text, trees.lineCounter)) trees.docs.push(doc);
      recentTrees.remember(this, trees);
    }
    return locate(trees.docs[index]!, trees.lineCounter, this.file, path);
  }
}

/** The parse trees of the last few files parsed, whichever loader they came from (bounded: 4 files). */
const recentTrees = new (class {
  private entries = new Map<FilePositions, FileTrees>();

  get(p: FilePositions): FileTrees | undefined {
    const t = this.entries.get(p);
    if (t) this.remember(p, t);
    return t;
  }

  remember(p: FilePositions, t: FileTrees): void {
    this.entries.delete(p);
    this.entries.set(p, t);
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= 4) break;
      this.entries.delete(oldest);
    }
  }
})();

/**
 * Lists whose items every compile locates: each http route and each subset is the origin of what
 * the model builds from it (model/issues.ts originOf, `file:line` in config dumps and explain).
 * Their positions are kept with the object, so a compile does not parse every file again.
 */
const ORIGIN_LISTS = ['http', 'subsets'] as const;

function keptPositions(spec: unknown, at: (path: FieldPath) => SourcePos): Map<string, SourcePos> {
  const kept = new Map<string, SourcePos>();
  for (const list of ORIGIN_LISTS) {
    const items = isRecord(spec) ? spec[list] : undefined;
    if (!Array.isArray(items)) continue;
    for (let i = 0; i < items.length; i++) kept.set(formatPath(['spec', list, i]), at(['spec', list, i]));
  }
  return kept;
}

/**
 * An object's `locate`. Made here, not in parseDocument: a closure there would share its scope with
 * the ones that read the parse tree, and keep the tree alive for as long as the object.
 */
function locator(kept: ReadonlyMap<string, SourcePos>, later: (path: FieldPath) => SourcePos): (path: FieldPath) => SourcePos {
  return (path) => kept.get(formatPath(path)) ?? later(path);
}

/**
 * Validates one document: `read` gives its JSON value (it may throw), `at` positions in it, and
 * `locateLater` is what the object keeps to find positions later.
 */
function parseDocument(file: string, read: () => unknown, at: (path: FieldPath, atKey?: boolean) => SourcePos, locateLater: (path: FieldPath) => SourcePos): ParsedDocument {
  const source = at([]);
  const errors: ConfigError[] = [];
  let context: Pick<ConfigError, 'kind' | 'name' | 'namespace'> = {};
  const report = (path: FieldPath, message: string, atKey = false) =>
    errors.push({ ...at(path, atKey), path: formatPath(path), message, ...context });

  let js: unknown;
  try {
    js = read();
  } catch (e) {
    report([], `cannot read the document: ${e instanceof Error ? e.message : String(e)}`);
    return { source, errors };
  }
  if (!isRecord(js)) {
    report([], 'a document must be a map with apiVersion, kind, metadata and spec');
    return { source, errors };
  }

  const kind = js['kind'];
  const apiVersion = js['apiVersion'];
  const name = stringField(js['metadata'], 'name');
  const namespace = stringField(js['metadata'], 'namespace') ?? 'default';
  const knownKind = typeof kind === 'string' && (KINDS as readonly string[]).includes(kind) ? (kind as Kind) : undefined;
  let key: string | undefined;
  if (knownKind && name !== undefined) {
    context = { kind: knownKind, name, namespace };
    key = `${knownKind}/${namespace}/${name}`;
  }

  if (apiVersion === undefined) report([], 'apiVersion is required');
  else {
    const accepted: readonly string[] = knownKind ? KIND_API_VERSIONS[knownKind] : API_VERSIONS;
    if (typeof apiVersion !== 'string' || !accepted.includes(apiVersion)) {
      const what = knownKind ? `for ${knownKind} ` : '';
      report(['apiVersion'], `unsupported apiVersion ${JSON.stringify(apiVersion)} ${what}(meshpilot accepts ${accepted.join(', ')})`);
    }
  }
  if (kind === undefined) report([], 'kind is required');
  else if (!knownKind) report(['kind'], `unsupported kind ${JSON.stringify(kind)} (meshpilot accepts ${KINDS.join(', ')})`);
  if (!knownKind) return { source, key, errors };

  const schema = documentSchemas[knownKind];
  const result = schema.safeParse(js);
  if (!result.success) {
    for (const p of problemsFromIssues(result.error.issues, js, schema)) {
      if (p.path[0] === 'apiVersion' || p.path[0] === 'kind') continue; // reported above, in our words
      report(p.path, p.message, p.atKey);
    }
  }
  if (errors.length > 0 || !result.success || name === undefined) return { source, key, errors };

  const metadata = result.data.metadata;
  const kept = keptPositions(result.data.spec, at);
  const object: ConfigObject = Object.freeze({
    kind: knownKind,
    apiVersion: result.data.apiVersion,
    name,
    namespace,
    labels: deepFreeze({ ...(metadata.labels ?? {}) }),
    annotations: deepFreeze({ ...(metadata.annotations ?? {}) }),
    spec: deepFreeze(result.data.spec) as ConfigObject['spec'],
    key: key!,
    source,
    locate: locator(kept, locateLater),
  });
  return { source, key, object, errors };
}

/** A file's contribution when there is no earlier version to fall back on. */
export function contributionOf(parsed: ParsedFile): FileContribution {
  if (parsed.syntaxErrors.length > 0) return { file: parsed.file, objects: [], errors: parsed.syntaxErrors };
  return {
    file: parsed.file,
    objects: parsed.documents.flatMap((d) => (d.object ? [d.object] : [])),
    errors: parsed.documents.flatMap((d) => d.errors),
  };
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareErrors(a: ConfigError, b: ConfigError): number {
  return compareStrings(a.file, b.file) || a.line - b.line || a.col - b.col;
}

/**
 * Merges files (in path order) into one result. Objects come out sorted by key, errors by position.
 * Of two objects with one key, the one in force stays in force: `held` names, per key, the
 * contribution its object came from last time (see `holders`), so a newcomer never takes over
 * live traffic whatever its file is called. With no history (a cold start, or the holder gone) the
 * first in path order wins. Either way the other is reported, with both locations.
 */
export function assemble(files: readonly FileContribution[], held?: ReadonlyMap<string, string>): LoadResult {
  const ordered = [...files].sort((a, b) => compareStrings(a.file, b.file));
  const byKey = new Map<string, { object: ConfigObject; from: string }>();
  const errors: ConfigError[] = [];
  const losers: Array<{ object: ConfigObject; from: string }> = [];
  for (const f of ordered) {
    errors.push(...f.errors);
    for (const o of f.objects) {
      const first = byKey.get(o.key);
      if (!first) byKey.set(o.key, { object: o, from: f.file });
      else if (held?.get(o.key) === f.file && first.from !== f.file) {
        byKey.set(o.key, { object: o, from: f.file });
        losers.push(first);
      } else losers.push({ object: o, from: f.file });
    }
  }
  for (const { object: o } of losers) {
    const winner = byKey.get(o.key)!;
    const where = winner.object.locate(['metadata', 'name']);
    const why = held?.get(o.key) === winner.from ? 'it was in force first' : 'first in path order';
    errors.push({
      ...o.locate(['metadata', 'name']),
      path: 'metadata.name',
      message: `duplicate ${o.kind} ${o.namespace}/${o.name}: the one at ${where.file}:${where.line}:${where.col} stays in force (${why}); this one is ignored`,
      kind: o.kind,
      name: o.name,
      namespace: o.namespace,
      duplicate: true,
    });
  }
  const objects = [...byKey.values()].map((w) => w.object).sort((a, b) => compareStrings(a.key, b.key));
  return { objects, errors: errors.sort(compareErrors) };
}

/**
 * Per key, the contribution (file) each object in `result` came from, for the next assemble().
 * `fileOf` maps an object to its contribution (default: the file it was read from).
 */
export function holders(result: LoadResult | undefined, fileOf: (o: ConfigObject) => string = (o) => o.source.file): Map<string, string> {
  return new Map((result?.objects ?? []).map((o) => [o.key, fileOf(o)]));
}

/** Parses one file's content. A file with YAML syntax errors contributes no objects. */
export function parseConfigText(file: string, text: string): LoadResult {
  return assemble([contributionOf(parseConfigFile(file, text))]);
}

export interface FileListing {
  /** `.yaml`/`.yml` files, as `join(dir, relative path)`, sorted by path. */
  files: string[];
  errors: ConfigError[];
  /** Directories that could not be read (their files are unknown, not gone). */
  unreadableDirs: string[];
}

export const CONFIG_FILE = /\.ya?ml$/i;

/**
 * Lists config files under `dir`, recursively. Names starting with "." are skipped (hidden files,
 * and the `..data` / `..<timestamp>` directories of a Kubernetes ConfigMap volume, whose files are
 * reached through the top-level symlinks). Symlinks are followed, each real directory once.
 */
export function listConfigFiles(dir: string): FileListing {
  const listing: FileListing = { files: [], errors: [], unreadableDirs: [] };
  const visited = new Set<string>();
  const fail = (path: string, what: string, e: unknown) =>
    listing.errors.push({ file: path, line: 1, col: 1, path: '', message: `cannot read ${what}: ${e instanceof Error ? e.message : String(e)}` });

  const walk = (d: string): void => {
    try {
      const real = realpathSync(d);
      if (visited.has(real)) return;
      visited.add(real);
      const entries = readdirSync(d, { withFileTypes: true });
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const full = join(d, entry.name);
        let isDir = entry.isDirectory();
        let isFile = entry.isFile();
        if (entry.isSymbolicLink()) {
          try {
            const st = statSync(full);
            isDir = st.isDirectory();
            isFile = st.isFile();
          } catch (e) {
            if (CONFIG_FILE.test(entry.name)) fail(full, 'file', e);
            continue;
          }
        }
        if (isDir) walk(full);
        else if (isFile && CONFIG_FILE.test(entry.name)) listing.files.push(full);
      }
    } catch (e) {
      listing.unreadableDirs.push(d);
      fail(d, 'directory', e);
    }
  };
  walk(dir);
  // Relative paths computed once, not twice per comparison (thousands of files, polled every 2 s).
  const rel = new Map(listing.files.map((f) => [f, relative(dir, f)]));
  listing.files.sort((a, b) => compareStrings(rel.get(a)!, rel.get(b)!));
  return listing;
}

/** Rule files larger than this are not read: parsing one blocks the event loop (see readConfigFile). */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

function formatBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}

function readError(file: string, message: string): ConfigError {
  return { file, line: 1, col: 1, path: '', message, wholeFile: true };
}

/**
 * Reads a file as UTF-8 text, or returns the error to report. A file over `maxBytes` is not read
 * (its size is checked on the open file, before reading), so a huge file cannot stall the process.
 */
export function readConfigFile(file: string, maxBytes = MAX_FILE_BYTES): { text: string } | { error: ConfigError; missing: boolean } {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const tooBig = (n: number) => ({ error: readError(file, `file is ${n} bytes, over the ${formatBytes(maxBytes)} limit for a rule file`), missing: false });
    if (size > maxBytes) return tooBig(size);
    const buf = readFileSync(fd);
    if (buf.length > maxBytes) return tooBig(buf.length); // grew while being read
    return { text: buf.toString('utf8') };
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return { error: readError(file, `cannot read file: ${e instanceof Error ? e.message : String(e)}`), missing };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Loads every `.yaml`/`.yml` file under `dir`. Objects are sorted by key. Never throws.
 * `onFile` hears how many files have been read so far, of how many (for a progress display).
 */
export function loadDirectory(dir: string, onFile?: (done: number, total: number) => void): LoadResult {
  const listing = listConfigFiles(dir);
  const contributions: FileContribution[] = [];
  for (const file of listing.files) {
    onFile?.(contributions.length, listing.files.length);
    const read = readConfigFile(file);
    if ('error' in read) contributions.push({ file, objects: [], errors: read.missing ? [] : [read.error] });
    else contributions.push(contributionOf(parseConfigFile(file, read.text)));
  }
  const result = assemble(contributions);
  result.errors.push(...listing.errors);
  result.errors.sort(compareErrors);
  return result;
}
