// A config directory as a live source of Istio objects, with last-good semantics: a broken edit
// never takes working config away from the mesh.
//
// Per file we keep the objects currently in force. When the file changes:
//  - a YAML syntax error keeps all of the file's objects in force;
//  - an object that fails validation keeps its previous valid version (matched by kind/namespace/
//    name), or is left out if it never had one;
//  - valid objects replace their previous versions; objects no longer in the file are dropped.
// A deleted file drops its objects. Files are merged in path order; the first of two objects with
// the same key wins. Errors always describe the files as they are now.
import { type FSWatcher, statSync, watch as fsWatch } from 'node:fs';
import { dirname, sep } from 'node:path';
import {
  type FileContribution,
  type ParsedFile,
  assemble,
  compareErrors,
  listConfigFiles,
  parseConfigFile,
  readConfigFile,
} from './load.ts';
import type { ConfigError, ConfigObject, LoadResult } from './types.ts';

interface FileState {
  text: string;
  /** Objects in force, in document order. */
  objects: ConfigObject[];
  errors: ConfigError[];
  /** The last read failed (the objects are those of the last successful read). */
  unreadable?: boolean;
  /** Inode, size, mtime and ctime when last read (see fileStamp). */
  stamp?: string;
}

function fileStamp(file: string): string | undefined {
  try {
    const st = statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

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

export class FileConfigSource {
  private readonly dir: string;
  private readonly debounceMs: number;
  private files = new Map<string, FileState>();
  private result: LoadResult | undefined;
  private listeners: ((r: LoadResult) => void)[] = [];
  private watcher: FSWatcher | undefined;
  private watchError: ConfigError | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private firstPendingEvent = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private closed = false;
  private lastListingErrors = '[]';
  private lastWatchError: string | undefined;
  private rootUnreadable = false;
  /** Watchers on subdirectories holding config files (the root has `watcher`). */
  private subWatchers = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly pollMs: number;

  constructor(dir: string, opts: { debounceMs?: number; pollMs?: number } = {}) {
    this.dir = dir;
    this.debounceMs = Math.max(0, opts.debounceMs ?? 100);
    this.pollMs = opts.pollMs ?? 2000;
  }

  /** For /readyz: whether the directory can be read and watched (a watcher retrying is not ready). */
  health(): { ok: boolean; detail: string } {
    if (this.rootUnreadable) return { ok: false, detail: `cannot read ${this.dir}` };
    if (this.watchError) return { ok: false, detail: `${this.dir}: ${this.watchError.message}` };
    return { ok: true, detail: `${this.files.size} files under ${this.dir}` };
  }

  /** Scans the directory now and returns the result (the first call is the initial scan). */
  load(): LoadResult {
    this.rescan();
    return this.current();
  }

  /** The result of the latest scan. */
  current(): LoadResult {
    if (!this.result) this.rescan();
    return this.result!;
  }

  /**
   * Calls `onChange` with a new result after files under the directory change (debounced). Only
   * real changes count: a file's text, a file added or removed, or the watcher failing/recovering.
   */
  watch(onChange: (r: LoadResult) => void): void {
    if (this.closed) throw new Error('FileConfigSource is closed');
    this.listeners.push(onChange);
    if (!this.result) this.rescan();
    if (!this.watcher && !this.retryTimer) this.startWatcher();
  }

  close(): void {
    this.closed = true;
    this.listeners = [];
    clearTimeout(this.debounceTimer);
    clearTimeout(this.retryTimer);
    this.debounceTimer = this.retryTimer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    for (const w of this.subWatchers.values()) w.close();
    this.subWatchers.clear();
    clearInterval(this.pollTimer);
  }

  // Node 20's recursive fs.watch on Linux watches files, not directories, and goes deaf to a
  // file replaced by rename (how editors, `kubectl cp` and ConfigMap volumes write). So each
  // directory gets its own plain watcher, and a slow poll catches anything a watcher missed.
  private syncSubWatchers(): void {
    if (this.closed || !this.watcher) return;
    const wanted = new Set([...this.files.keys()].map((f) => dirname(f)).filter((d) => d !== this.dir));
    for (const [d, w] of this.subWatchers) if (!wanted.has(d)) { w.close(); this.subWatchers.delete(d); }
    for (const d of wanted) {
      if (this.subWatchers.has(d)) continue;
      try {
        const w = fsWatch(d, () => this.schedule());
        w.on('error', () => { w.close(); this.subWatchers.delete(d); });
        this.subWatchers.set(d, w);
      } catch {
        // A directory that vanished since the scan: the next scan sorts it out.
      }
    }
  }

  private startWatcher(): void {
    this.retryTimer = undefined;
    if (this.closed) return;
    if (!this.pollTimer && this.pollMs > 0) {
      this.pollTimer = setInterval(() => this.refresh(), this.pollMs);
      this.pollTimer.unref();
    }
    try {
      const w = fsWatch(this.dir, () => this.schedule());
      w.on('error', (e) => this.watcherFailed(e));
      this.watcher = w;
      this.retryDelay = RETRY_MIN_MS;
      this.watchError = undefined;
      // Catch anything that changed while no watcher was running.
      this.refresh();
    } catch (e) {
      this.watcherFailed(e);
    }
  }

  private watcherFailed(e: unknown): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.closed) return;
    const reason = e instanceof Error ? e.message : String(e);
    this.watchError = {
      file: this.dir,
      line: 1,
      col: 1,
      path: '',
      message: `cannot watch the directory (${reason}); retrying`,
    };
    this.refresh();
    this.retryTimer = setTimeout(() => this.startWatcher(), this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
  }

  /** Debounce: wait for `debounceMs` of quiet, but never more than 10x that after the first event. */
  private schedule(): void {
    if (this.closed) return;
    const now = Date.now();
    if (!this.debounceTimer) this.firstPendingEvent = now;
    else if (now - this.firstPendingEvent >= this.debounceMs * 10) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.refresh();
    }, this.debounceMs);
  }

  /** Rescans; tells the listeners if anything changed. */
  private refresh(): void {
    if (this.closed) return;
    const changed = this.rescan();
    // A watcher on a directory that was removed hears nothing more, even if the directory comes
    // back: start over (with backoff) so that a recreated directory is watched again.
    if (this.rootUnreadable && this.watcher) {
      this.watcherFailed(new Error('the directory cannot be read'));
      return;
    }
    if (!changed) return;
    const result = this.current();
    for (const listener of [...this.listeners]) {
      try {
        listener(result);
      } catch (e) {
        process.emitWarning(`FileConfigSource listener threw: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      }
    }
  }

  /** Re-reads every file, re-parses the changed ones, rebuilds the result. Returns whether anything changed. */
  private rescan(): boolean {
    const listing = listConfigFiles(this.dir);
    this.rootUnreadable = listing.unreadableDirs.includes(this.dir);
    const next = new Map<string, FileState>();
    let changed = this.result === undefined;

    for (const file of listing.files) {
      const prev = this.files.get(file);
      // A file whose identity, size and times are what they were is not read again: with thousands
      // of files, reading them all on every change is most of a change's cost.
      const stamp = fileStamp(file);
      if (prev && !prev.unreadable && stamp !== undefined && prev.stamp === stamp) {
        next.set(file, prev);
        continue;
      }
      const read = readConfigFile(file);
      if ('error' in read) {
        if (read.missing) continue; // removed between listing and reading
        next.set(file, { text: prev?.text ?? '', objects: prev?.objects ?? [], errors: [read.error], unreadable: true });
        changed = true;
        continue;
      }
      if (prev && !prev.unreadable && prev.text === read.text) {
        next.set(file, { ...prev, stamp });
        continue;
      }
      next.set(file, { ...nextFileState(parseConfigFile(file, read.text), read.text, prev), stamp });
      changed = true;
    }

    // Files we know under a directory that cannot be read right now are kept, not dropped.
    const unreadable = listing.unreadableDirs;
    for (const [file, state] of this.files) {
      if (next.has(file)) continue;
      if (unreadable.some((d) => file === d || file.startsWith(d + sep) || d === this.dir)) next.set(file, state);
      else changed = true; // deleted
    }

    const listingErrors = JSON.stringify(listing.errors);
    if (listingErrors !== this.lastListingErrors) changed = true;
    this.lastListingErrors = listingErrors;
    const watchError = this.watchError?.message;
    if (watchError !== this.lastWatchError) changed = true;
    this.lastWatchError = watchError;

    this.files = next;
    this.syncSubWatchers();
    if (!changed) return false;

    const contributions: FileContribution[] = [...next].map(([file, s]) => ({ file, objects: s.objects, errors: s.errors }));
    const result = assemble(contributions);
    result.errors.push(...listing.errors);
    if (this.watchError) result.errors.push(this.watchError);
    result.errors.sort(compareErrors);
    this.result = result;
    return true;
  }
}
