// A config directory as a live source of Istio objects, with last-good semantics: a broken edit
// never takes working config away from the mesh.
//
// Per file we keep the objects currently in force. When the file changes:
//  - a YAML syntax error keeps all of the file's objects in force;
//  - an object that fails validation keeps its previous valid version (matched by kind/namespace/
//    name), or is left out if it never had one;
//  - valid objects replace their previous versions; objects no longer in the file are dropped.
// A deleted file drops its objects. Of two objects with the same key, the one in force stays in
// force (at the first scan: the first in path order). Errors always describe the files as they are now.
import { type FSWatcher, statSync, watch as fsWatch } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import {
  type FileContribution,
  type ParsedFile,
  CONFIG_FILE,
  assemble,
  compareErrors,
  holders,
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
  /** The errors of the last directory listing, kept for results built from a partial re-read. */
  private lastListing: ConfigError[] = [];
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
        const w = fsWatch(d, (_event, name) => this.schedule(name ? join(d, String(name)) : undefined));
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
      const w = fsWatch(this.dir, (_event, name) => this.schedule(name ? join(this.dir, String(name)) : undefined));
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

  /** Paths named by watch events since the last refresh; 'all' when one came without a name. */
  private pendingPaths: Set<string> | 'all' | undefined;

  /** Debounce: wait for `debounceMs` of quiet, but never more than 10x that after the first event. */
  private schedule(path?: string): void {
    if (this.closed) return;
    if (path === undefined || this.pendingPaths === 'all') this.pendingPaths = 'all';
    else {
      this.pendingPaths ??= new Set();
      this.pendingPaths.add(path);
    }
    const now = Date.now();
    if (!this.debounceTimer) this.firstPendingEvent = now;
    else if (now - this.firstPendingEvent >= this.debounceMs * 10) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      const paths = this.pendingPaths;
      this.pendingPaths = undefined;
      this.refresh(paths === 'all' ? undefined : paths);
    }, this.debounceMs);
  }

  /** Rescans (only `paths` when the watchers named them); tells the listeners if anything changed. */
  private refresh(paths?: Set<string>): void {
    if (this.closed) return;
    let changed = paths ? this.rescanPaths(paths) : this.rescan();
    if (changed === 'full') changed = this.rescan();
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
      const state = this.readFile(file, this.files.get(file));
      if (state === 'missing') continue; // removed between listing and reading
      if (state !== this.files.get(file)) changed = true;
      next.set(file, state);
    }

    // Files we know under a directory that cannot be read right now are kept, not dropped.
    const unreadable = listing.unreadableDirs;
    for (const [file, state] of this.files) {
      if (next.has(file)) continue;
      if (unreadable.some((d) => file === d || file.startsWith(d + sep) || d === this.dir)) next.set(file, state);
      else changed = true; // deleted
    }

    if (JSON.stringify(listing.errors) !== JSON.stringify(this.lastListing)) changed = true;
    this.lastListing = listing.errors;
    this.files = next;
    this.syncSubWatchers();
    return this.finish(changed);
  }

  /**
   * Re-reads only the files the watchers named. With thousands of files, stating them all on
   * every change is most of a small change's cost. Anything but a known file changing in place (a
   * new or deleted file, a directory, a ConfigMap volume's `..data` swap) returns 'full'.
   */
  private rescanPaths(paths: Set<string>): boolean | 'full' {
    if (this.result === undefined) return 'full';
    const next = new Map(this.files);
    let changed = false;
    for (const path of paths) {
      const prev = this.files.get(path);
      if (!prev) {
        if (this.knowsFilesUnder(path)) return 'full';
        let isFile: boolean;
        try {
          isFile = statSync(path).isFile();
        } catch {
          continue; // gone already: an editor's or our own temporary file
        }
        // A plain file that is not a config file (or is hidden) is not ours; anything else is new.
        if (isFile && (!CONFIG_FILE.test(path) || basename(path).startsWith('.'))) continue;
        return 'full';
      }
      const state = this.readFile(path, prev);
      if (state === 'missing') return 'full';
      if (state !== prev) changed = true;
      next.set(path, state);
    }
    this.files = next;
    return this.finish(changed);
  }

  private knowsFilesUnder(dir: string): boolean {
    for (const f of this.files.keys()) if (f.startsWith(dir + sep)) return true;
    return false;
  }

  /** A file's new state, or `prev` itself when its stamp or text did not change. */
  private readFile(file: string, prev: FileState | undefined): FileState | 'missing' {
    // A file whose identity, size and times are what they were is not read again.
    const stamp = fileStamp(file);
    if (prev && !prev.unreadable && stamp !== undefined && prev.stamp === stamp) return prev;
    const read = readConfigFile(file);
    if ('error' in read) {
      if (read.missing) return 'missing';
      return { text: prev?.text ?? '', objects: prev?.objects ?? [], errors: [read.error], unreadable: true };
    }
    if (prev && !prev.unreadable && prev.text === read.text) {
      prev.stamp = stamp;
      return prev;
    }
    return { ...nextFileState(parseConfigFile(file, read.text), read.text, prev), stamp };
  }

  private finish(changedFiles: boolean): boolean {
    let changed = changedFiles;
    const watchError = this.watchError?.message;
    if (watchError !== this.lastWatchError) changed = true;
    this.lastWatchError = watchError;
    if (!changed) return false;
    const contributions: FileContribution[] = [...this.files].map(([file, s]) => ({ file, objects: s.objects, errors: s.errors }));
    // The object in force keeps its place against a newcomer with the same key.
    const result = assemble(contributions, holders(this.result));
    result.errors.push(...this.lastListing);
    if (this.watchError) result.errors.push(this.watchError);
    result.errors.sort(compareErrors);
    this.result = result;
    return true;
  }
}
