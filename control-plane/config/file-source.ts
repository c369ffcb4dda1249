// A config directory as a live source of Istio objects. What a file contributes follows the
// last-good rules of file-state.ts (a broken edit never takes working config away). This file
// decides WHEN a file's content is taken, so that no transient state of the files (truncated before
// being rewritten, deleted before being recreated, half written) takes rules away from the mesh:
//  - Settling: a changed file is read only once its stamp (inode, size, mtime, ctime) has not
//    changed for `settleMs` (default 50 ms), and a read counts only if the stamp is the same after it.
//  - Removals wait: a settled read that would take objects out of the mesh (the file deleted,
//    emptied, or holding fewer objects) takes effect only once the file has stayed in that state
//    for `quietMs` (default 1 s). Until then those objects stay in force; added and changed objects
//    of the same read apply at once. If the file changes within that time (rewritten, recreated),
//    the new content is an ordinary edit of the objects in force: the same text keeps the same
//    objects. A syntax error removes nothing (the file's objects stay), so it is reported at once.
//  - Size: a file over `maxFileBytes` (default 4 MiB) is not read; its objects stay, with an error.
//  - The root directory: while it is gone or unreadable, every file's objects stay in force, the
//    source reports an error and is not ready (a vanished mount or volume is not the operator's
//    intent), whatever order its files vanished in. Once it is back, files still missing are
//    removed after a full quiet period. Files deleted while the root stays (one by one, or a
//    subdirectory removed) are removed after the quiet period.
// `load()` is an explicit scan (start-up, `reload()`): it takes every file as it is now, removals
// included, without settling. Of two objects with the same key, the one in force stays in force
// (at the first scan: the first in path order). The watcher parses changed files in slices of
// about 10 ms with a turn of the event loop between them (and between files), so neither a batch
// of files nor one big file stalls the xDS streams.
import { type FSWatcher, constants, accessSync, statSync, watch as fsWatch } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type FileContribution, CONFIG_FILE, MAX_FILE_BYTES, assemble, compareErrors, holders, listConfigFiles } from './load.ts';
import { type FileState, fileStamp, readFileState, readFileStateInSlices, removesObjects, withRemovalsHeld } from './file-state.ts';
import type { ConfigError, LoadResult } from './types.ts';

export interface FileSourceOptions {
  /** Coalesces the watch events of this long (default 100 ms). */
  debounceMs?: number;
  /** Full rescan interval, for anything the watchers miss (default 2 s; 0: none). */
  pollMs?: number;
  /** A file must be unchanged this long before it is read (default 50 ms). */
  settleMs?: number;
  /** A change that removes objects must last this long before it applies (default 1 s). */
  quietMs?: number;
  /** Larger files are not read (default 4 MiB). */
  maxFileBytes?: number;
}

/** A file whose stamp differs from the state in force. */
interface Pending {
  /** The stamp last seen; undefined: the file is gone. */
  stamp: string | undefined;
  /** When that stamp was first seen (performance.now()). */
  since: number;
  /** The settled read, when it would remove objects: it applies `quietMs` after `since`. */
  held?: FileState | 'gone';
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function readableDir(dir: string): boolean {
  try {
    accessSync(dir, constants.R_OK | constants.X_OK);
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function presentButUnreadable(dir: string): boolean {
  try {
    statSync(dir);
  } catch {
    return false;
  }
  return !readableDir(dir);
}

export class FileConfigSource {
  private readonly dir: string;
  private readonly debounceMs: number;
  private readonly settleMs: number;
  private readonly quietMs: number;
  private readonly maxFileBytes: number;
  private readonly pollMs: number;
  /** The state in force per file. */
  private files = new Map<string, FileState>();
  /** Files seen to differ from their state in force, waiting to settle or to be removed. */
  private pending = new Map<string, Pending>();
  private result: LoadResult | undefined;
  private listeners: ((r: LoadResult) => void)[] = [];
  private watcher: FSWatcher | undefined;
  private watchError: ConfigError | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private firstPendingEvent = 0;
  private settleTimer: NodeJS.Timeout | undefined;
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
  /** Work for the next step: paths named by watch events, or a full scan. */
  private dirty = new Set<string>();
  private wantFull = false;
  private stepping = false;
  private stepAgain = false;

  constructor(dir: string, opts: FileSourceOptions = {}) {
    this.dir = dir;
    this.debounceMs = Math.max(0, opts.debounceMs ?? 100);
    this.pollMs = opts.pollMs ?? 2000;
    this.settleMs = Math.max(0, opts.settleMs ?? 50);
    this.quietMs = Math.max(this.settleMs, opts.quietMs ?? 1000);
    this.maxFileBytes = opts.maxFileBytes ?? MAX_FILE_BYTES;
  }

  /** For /readyz: whether the directory can be read and watched (a watcher retrying is not ready). */
  health(): { ok: boolean; detail: string } {
    if (this.rootUnreadable) return { ok: false, detail: `cannot read ${this.dir}` };
    if (this.watchError) return { ok: false, detail: `${this.dir}: ${this.watchError.message}` };
    return { ok: true, detail: `${this.files.size} files under ${this.dir}` };
  }

  /** Scans the directory now, taking every file as it is, and returns the result (the first call is the initial scan). */
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
   * Calls `onChange` with a new result after files under the directory change (settled, see the
   * header). Only real changes count: a file's objects or errors, or the watcher failing/recovering.
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
    clearTimeout(this.settleTimer);
    this.debounceTimer = this.retryTimer = this.settleTimer = undefined;
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
    const wanted = new Set([...this.files.keys(), ...this.pending.keys()].map((f) => dirname(f)).filter((d) => d !== this.dir));
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

  /** Debounce: wait for `debounceMs` of quiet, but never more than 10x that after the first event. */
  private schedule(path?: string): void {
    if (this.closed) return;
    if (path === undefined) this.wantFull = true;
    else this.dirty.add(path);
    const now = Date.now();
    if (!this.debounceTimer) this.firstPendingEvent = now;
    else if (now - this.firstPendingEvent >= this.debounceMs * 10) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.step();
    }, this.debounceMs);
  }

  /** Looks at `paths` (all files when not given) and takes what has settled; tells the listeners of changes. */
  private refresh(paths?: Set<string>): void {
    if (this.closed) return;
    if (paths) for (const p of paths) this.dirty.add(p);
    else this.wantFull = true;
    void this.step();
  }

  /** One round: stat what changed, take settled files, notify. Rounds never overlap (parsing yields). */
  private async step(): Promise<void> {
    if (this.stepping) {
      this.stepAgain = true;
      return;
    }
    this.stepping = true;
    let changed = false;
    try {
      do {
        this.stepAgain = false;
        if (this.observe()) changed = true;
        // A watcher on a directory that was removed hears nothing more, even if the directory
        // comes back: start over (with backoff) so that a recreated directory is watched again.
        if (this.rootUnreadable && this.watcher) this.watcherFailed(new Error('the directory cannot be read'));
        if (await this.settle()) changed = true;
      } while (this.stepAgain && !this.closed);
    } catch (e) {
      process.emitWarning(`FileConfigSource: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    } finally {
      this.stepping = false;
    }
    if (this.closed) return;
    this.syncSubWatchers();
    this.scheduleSettle();
    if (!this.finish(changed)) return;
    const result = this.current();
    for (const listener of [...this.listeners]) {
      try {
        listener(result);
      } catch (e) {
        process.emitWarning(`FileConfigSource listener threw: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      }
    }
  }

  /** Wakes a step when the next pending file is due. */
  private scheduleSettle(): void {
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    let due = Infinity;
    for (const p of this.pending.values()) due = Math.min(due, p.since + (p.held ? this.quietMs : this.settleMs));
    if (due === Infinity || this.closed) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      void this.step();
    }, Math.max(0, Math.ceil(due - performance.now())) + 1);
    // Watching keeps the process alive; a pending file alone must not.
    this.settleTimer.unref();
  }

  /** Stats what the events named (or everything) and records files that differ. Returns whether the listing errors changed. */
  private observe(): boolean {
    const now = performance.now();
    const paths = this.dirty;
    const full = this.wantFull || this.result === undefined;
    this.dirty = new Set();
    this.wantFull = false;
    if (!full && this.observePaths(paths, now) !== 'full') return false;
    return this.observeAll(now);
  }

  /** Records a file's stamp: a new stamp (re)starts its settling. */
  private see(file: string, stamp: string | undefined, now: number): void {
    const p = this.pending.get(file);
    if (p) {
      if (p.stamp !== stamp) this.pending.set(file, { stamp, since: now });
      return;
    }
    const known = this.files.get(file);
    if (known ? known.stamp === stamp : stamp === undefined) return;
    this.pending.set(file, { stamp, since: now });
  }

  private observeAll(now: number): boolean {
    const listing = listConfigFiles(this.dir);
    const wasUnreadable = this.rootUnreadable;
    this.rootUnreadable = listing.unreadableDirs.includes(this.dir);
    const listed = new Set(listing.files);
    for (const file of listing.files) this.see(file, fileStamp(file), now);
    // Files under a directory that cannot be read right now are unknown, not gone.
    const unreadable = listing.unreadableDirs;
    for (const file of [...this.files.keys(), ...this.pending.keys()]) {
      if (listed.has(file) || this.rootUnreadable || unreadable.some((d) => file.startsWith(d + sep))) continue;
      this.see(file, undefined, now);
    }
    // Removals wait a full quiet period from when the root directory is back.
    if (this.rootUnreadable || wasUnreadable) for (const p of this.pending.values()) if (p.stamp === undefined) p.since = now;
    const changed = JSON.stringify(listing.errors) !== JSON.stringify(this.lastListing);
    this.lastListing = listing.errors;
    return changed;
  }

  /**
   * Stats only the files the watchers named. With thousands of files, stating them all on every
   * change is most of a small change's cost. Anything but a known file changing in place (a new or
   * deleted file, a directory, a ConfigMap volume's `..data` swap) returns 'full'.
   */
  private observePaths(paths: Set<string>, now: number): 'full' | undefined {
    for (const path of paths) {
      if (this.files.has(path) || this.pending.has(path)) {
        const stamp = fileStamp(path);
        if (stamp === undefined && this.files.has(path)) return 'full'; // deleted or renamed away
        this.see(path, stamp, now);
        continue;
      }
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
    return undefined;
  }

  private knowsFilesUnder(dir: string): boolean {
    for (const f of this.files.keys()) if (f.startsWith(dir + sep)) return true;
    for (const f of this.pending.keys()) if (f.startsWith(dir + sep)) return true;
    return false;
  }

  /** Takes the pending files that are due (see the header). Returns whether the state in force changed. */
  private async settle(): Promise<boolean> {
    let changed = false;
    for (const [file, p] of [...this.pending]) {
      if (this.closed) break;
      if (this.pending.get(file) !== p) continue; // replaced meanwhile (load(), a newer stamp)
      const now = performance.now();
      if (now < p.since + (p.held ? this.quietMs : this.settleMs)) continue;
      const stamp = fileStamp(file);
      if (stamp !== p.stamp) {
        this.pending.set(file, { stamp, since: now });
        continue;
      }
      const known = this.files.get(file);

      if (p.held) {
        // The root vanished: keep everything (see the header). A subdirectory that is there but
        // cannot be read hides its files, as in a listing.
        if (p.held === 'gone' && !readableDir(this.dir)) {
          p.since = now;
          // Its watcher may have heard nothing: a full scan reports the directory and restarts it.
          if (!this.rootUnreadable) this.wantFull = this.stepAgain = true;
          continue;
        }
        if (p.held === 'gone' && presentButUnreadable(dirname(file))) {
          p.since = now;
          continue;
        }
        this.pending.delete(file);
        if (p.held === 'gone') this.files.delete(file);
        else this.files.set(file, p.held);
        changed = true;
        continue;
      }

      let next: FileState | undefined; // undefined: the file is gone
      if (stamp !== undefined) {
        // Parsed in slices, with a turn of the event loop between files: the streams keep being served.
        const read = await readFileStateInSlices(file, known, this.maxFileBytes);
        await yieldTurn();
        if (this.closed || this.pending.get(file) !== p || this.files.get(file) !== known) continue;
        if (read === 'missing' || read === 'moving') {
          this.pending.set(file, { stamp: fileStamp(file), since: performance.now() });
          continue;
        }
        next = read;
      }

      if (!removesObjects(known, next)) {
        this.pending.delete(file);
        if (next === known) continue;
        if (next) this.files.set(file, next);
        else this.files.delete(file);
        changed = true;
        continue;
      }
      // It would remove objects: wait out the quiet period. What else it brings applies now.
      p.held = next ?? 'gone';
      if (next && (next.objects.some((o) => !known!.objects.includes(o)) || JSON.stringify(next.errors) !== JSON.stringify(known!.errors))) {
        this.files.set(file, withRemovalsHeld(known!, next));
        changed = true;
      }
    }
    return changed;
  }

  /** Reads every file now, taking each as it is (no settling, removals at once). Returns whether anything changed. */
  private rescan(): boolean {
    const listing = listConfigFiles(this.dir);
    this.rootUnreadable = listing.unreadableDirs.includes(this.dir);
    const next = new Map<string, FileState>();
    let changed = this.result === undefined;

    for (const file of listing.files) {
      const prev = this.files.get(file);
      const state = readFileState(file, prev, this.maxFileBytes);
      if (state === 'missing') continue; // removed between listing and reading
      if (state === 'moving') {
        // Being written right now: keep what is in force, and take it once it settles.
        if (prev) next.set(file, prev);
        this.pending.set(file, { stamp: fileStamp(file), since: performance.now() });
        continue;
      }
      this.pending.delete(file);
      if (state !== prev) changed = true;
      next.set(file, state);
    }

    // Files we know under a directory that cannot be read right now are kept, not dropped.
    const unreadable = listing.unreadableDirs;
    for (const [file, state] of this.files) {
      if (next.has(file)) continue;
      if (unreadable.some((d) => file === d || file.startsWith(d + sep) || d === this.dir)) next.set(file, state);
      else changed = true; // deleted
    }
    for (const file of this.pending.keys()) if (!next.has(file)) this.pending.delete(file);

    if (JSON.stringify(listing.errors) !== JSON.stringify(this.lastListing)) changed = true;
    this.lastListing = listing.errors;
    this.files = next;
    this.syncSubWatchers();
    this.scheduleSettle();
    return this.finish(changed);
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
