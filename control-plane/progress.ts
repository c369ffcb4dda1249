// Progress of a long CLI run, for a person watching a terminal: one line on stderr, rewritten in
// place at most every 100 ms. When stderr is not a terminal (a pipe, a file, a test, CI) nothing
// is written at all, so what scripts read never changes.

export interface Progress {
  /** The current state, e.g. "translating for 120 proxies: 37/120". Cheap to call often. */
  update(text: string): void;
  /** Takes the line off the screen (before other output, and at the end); the next update redraws it. */
  clear(): void;
}

export const NO_PROGRESS: Progress = { update() {}, clear() {} };

interface Terminal {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/** Progress on `stream` (stderr by default) when it is a terminal, else none. */
export function terminalProgress(stream: Terminal = process.stderr, intervalMs = 100): Progress {
  if (!stream.isTTY) return NO_PROGRESS;
  let shown = false;
  let last = 0;
  return {
    update(text) {
      const now = performance.now();
      if (last && now - last < intervalMs) return;
      last = now;
      const width = Math.max(10, (stream.columns || 80) - 1); // 0 when the terminal does not say
      // \r and "erase line": the new text replaces the old one, whatever their lengths.
      stream.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`);
      shown = true;
    },
    clear() {
      if (!shown) return;
      stream.write('\r\x1b[2K');
      shown = false;
    },
  };
}
