// One rule file's contribution to the mesh with last-good semantics, and how a new read of the file
// changes it. FileConfigSource (file-source.ts) decides WHEN a read is taken; this decides WHAT it
// becomes:
//  - a YAML syntax error keeps all of the file's objects in force;
//  - an object that fails validation keeps its previous valid version (matched by kind/namespace/
//    name), or is left out if it never had one;
//  - valid objects replace their previous versions; objects no longer in the file are dropped;
//  - a file that cannot be read (permissions, over the size limit) keeps its objects.
import { statSync } from 'node:fs';
import { type ParsedFile, parseConfigFile, parseConfigFileInSlices, readConfigFile } from './load.ts';
import type { ConfigError, ConfigObject } from './types.ts';

export interface FileState {
  text: string;
  /** Objects in force, in document order. */
  objects: ConfigObject[];
  errors: ConfigError[];
  /** The last read failed (the objects are those of the last successful read). */
  unreadable?: boolean;
  /**
   * Also holds objects the file no longer has, until their removal's quiet period ends: this
   * describes no content of the file, so it is never reused for an equal stamp or text.
   */
  provisional?: boolean;
  /** Inode, size, mtime and ctime when last read (see fileStamp). */
  stamp?: string;
}

/** Changes whenever the file is written, replaced or recreated; undefined when it is gone. */
export function fileStamp(file: string): string | undefined {
  try {
    const st = statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The new state of a file from its new text and its previous state (last-good rules above). */
export function nextFileState(parsed: ParsedFile, text: string, prev: FileState | undefined): FileState {
  const previous = prev?.objects ?? [];
  if (parsed.syntaxErrors.length > 0) {
    const errors = [...parsed.syntaxErrors];
    if (previous.length > 0) {
      const first = parsed.syntaxErrors[0]!;
      errors.push({
        ...first,
        message: `the file's previous ${plural(previous.length, 'object')} stay in force until it parses again`,
      });
    }
    return { text, objects: previous, errors };
  }

  const valid = new Set(parsed.documents.flatMap((d) => (d.object ? [d.object.key] : [])));
  const kept = new Set<string>();
  const objects: ConfigObject[] = [];
  const errors: ConfigError[] = [];
  for (const d of parsed.documents) {
    errors.push(...d.errors);
    if (d.object) {
      objects.push(d.object);
      continue;
    }
    if (!d.key || valid.has(d.key) || kept.has(d.key)) continue;
    const old = previous.find((o) => o.key === d.key);
    if (!old) continue;
    kept.add(d.key);
    objects.push(old);
    errors.push({
      ...d.source,
      path: '',
      message: 'invalid; its previous valid version stays in force',
      kind: old.kind,
      name: old.name,
      namespace: old.namespace,
    });
  }
  return { text, objects, errors };
}

/** A file's new text, still to be parsed against its previous state. */
interface NewText {
  newText: string;
  stamp: string;
}

/**
 * Reads a file against its previous state: `prev` itself when the stamp or text did not change, a
 * state needing no parse (the file cannot be read), the new text to parse, 'missing' when the file
 * is gone, or 'moving' when it changed while being read (the stamps before and after the read
 * differ): that read is not the file's content.
 */
function readFileText(file: string, prev: FileState | undefined, maxBytes: number): FileState | NewText | 'missing' | 'moving' {
  const stamp = fileStamp(file);
  if (stamp === undefined) return 'missing';
  // Same inode, size and times: same content (a file over the size limit is not even opened again).
  if (prev && !prev.provisional && prev.stamp === stamp) return prev;
  const read = readConfigFile(file, maxBytes);
  if (fileStamp(file) !== stamp) return 'moving';
  if ('error' in read) {
    if (read.missing) return 'missing';
    const objects = prev?.objects ?? [];
    const error = objects.length === 0 ? read.error : { ...read.error, message: `${read.error.message}; its previous ${plural(objects.length, 'object')} stay in force` };
    return { text: prev?.text ?? '', objects, errors: [error], unreadable: true, stamp };
  }
  if (prev && !prev.unreadable && !prev.provisional && prev.text === read.text) {
    prev.stamp = stamp;
    return prev;
  }
  return { newText: read.text, stamp };
}

/** Reads and parses a file now (see readFileText for what comes back). */
export function readFileState(file: string, prev: FileState | undefined, maxBytes: number): FileState | 'missing' | 'moving' {
  const read = readFileText(file, prev, maxBytes);
  if (typeof read === 'string' || !('newText' in read)) return read;
  return { ...nextFileState(parseConfigFile(file, read.newText), read.newText, prev), stamp: read.stamp };
}

/** readFileState, parsing in slices so that a big file does not stall the event loop. */
export async function readFileStateInSlices(file: string, prev: FileState | undefined, maxBytes: number): Promise<FileState | 'missing' | 'moving'> {
  const read = readFileText(file, prev, maxBytes);
  if (typeof read === 'string' || !('newText' in read)) return read;
  return { ...nextFileState(await parseConfigFileInSlices(file, read.newText), read.newText, prev), stamp: read.stamp };
}

/** Whether going from `prev` to `next` takes any object of the file out of the mesh. */
export function removesObjects(prev: FileState | undefined, next: FileState | undefined): boolean {
  if (!prev) return false;
  const keys = new Set((next?.objects ?? []).map((o) => o.key));
  return prev.objects.some((o) => !keys.has(o.key));
}

/**
 * What is in force while a removal waits out its quiet period: everything `next` brings (new and
 * changed objects apply at once) plus the objects of `prev` that `next` would remove.
 */
export function withRemovalsHeld(prev: FileState, next: FileState): FileState {
  const keys = new Set(next.objects.map((o) => o.key));
  const held = prev.objects.filter((o) => !keys.has(o.key));
  return { text: next.text, objects: [...next.objects, ...held], errors: next.errors, provisional: true };
}
