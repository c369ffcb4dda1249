// `meshpilot wait --until-synced`: polls the admin API's /debug/proxies until every matching
// proxy has ACKed the current config, for scripts and CI ("apply a rule, then wait until the mesh
// has it"). A proxy seen during the wait that disconnects counts as a straggler: it never got
// the config, and a rollout script should hear about it.
import type { ProxyStatus } from './proxy-status.ts';
import { adminBase } from './admin-url.ts';
import { whyNoAnswer } from './admin-client.ts';

export interface WaitOptions {
  /** Admin API base, `http://127.0.0.1:15014` (the scheme may be left out). */
  admin: string;
  /** Label selector, e.g. `app=reviews`. */
  selector?: string;
  /** One proxy by node id. */
  proxy?: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Called with each poll's matching proxies (progress output, tests). */
  onPoll?: (proxies: ProxyStatus[]) => void;
}

export interface WaitResult {
  ok: boolean;
  /** What to print: a summary on success, the stragglers (one per line) on failure. */
  message: string;
  /** Proxies not synced at the end, with their state per type. */
  stragglers: string[];
}

interface ProxiesAnswer { generation: number; proxies: ProxyStatus[] }

export async function waitUntilSynced(opts: WaitOptions): Promise<WaitResult> {
  const base = adminBase(opts.admin);
  const query = new URLSearchParams();
  if (opts.selector) query.set('selector', opts.selector);
  if (opts.proxy) query.set('proxy', opts.proxy);
  const url = `${base}/debug/proxies${query.size ? `?${query}` : ''}`;
  const what = [opts.selector && `selector ${opts.selector}`, opts.proxy && `id ${opts.proxy}`].filter(Boolean).join(' and ') || 'any proxy';
  const seen = new Map<string, ProxyStatus>();

  const polled = await pollAdmin<ProxiesAnswer & { error?: string }, WaitResult>(url, opts.timeoutMs, opts.intervalMs, (status, body) => {
    // A bad selector will not get better by waiting.
    if (status === 400) return { ok: false, message: `admin API refused the query: ${body?.error ?? status}`, stragglers: [] };
    if (status !== 200) throw new Error(`admin API answered ${status}`);
    for (const p of body.proxies) seen.set(p.id, p);
    opts.onPoll?.(body.proxies);
    const present = new Set(body.proxies.map((p) => p.id));
    const gone = [...seen.keys()].filter((id) => !present.has(id));
    if (body.proxies.length > 0 && gone.length === 0 && body.proxies.every((p) => p.state === 'SYNCED')) {
      return { ok: true, message: `${body.proxies.length} ${body.proxies.length === 1 ? 'proxy' : 'proxies'} matching ${what} synced to config generation ${body.generation}`, stragglers: [] };
    }
    return undefined;
  });
  if (polled.done) return polled.done;
  const { last, lastError } = polled;

  const seconds = `${Math.round(opts.timeoutMs / 100) / 10}s`;
  if (!last) return { ok: false, message: `timed out after ${seconds}: could not read ${url}: ${lastError}`, stragglers: [] };
  if (seen.size === 0) return { ok: false, message: `timed out after ${seconds}: no connected proxy matches ${what}`, stragglers: [] };
  const present = new Map(last.proxies.map((p) => [p.id, p]));
  const stragglers: string[] = [];
  for (const [id, p] of seen) {
    const now = present.get(id);
    if (!now) stragglers.push(`${id}: disconnected during the wait (was ${p.state}${describeTypes(p) ? `; ${describeTypes(p)}` : ''})`);
    else if (now.state !== 'SYNCED') stragglers.push(`${id}: ${now.state}; ${describeTypes(now)}`);
  }
  const header = `timed out after ${seconds}: ${stragglers.length} of ${seen.size} ${seen.size === 1 ? 'proxy' : 'proxies'} matching ${what} not synced to config generation ${last.generation}${lastError ? ` (last poll failed: ${lastError})` : ''}`;
  return { ok: false, message: [header, ...stragglers.map((s) => `  ${s}`)].join('\n'), stragglers };
}

/** What a poll ended with: `done` when `check` decided, else the last answer read and the last failure. */
export interface Polled<T, R> {
  done?: R;
  /** The last answer `check` took without throwing. */
  last?: T;
  lastError?: string;
}

/**
 * GETs `url` until `check` returns a result or `timeoutMs` has passed. `check` gets each answer's
 * status and JSON body (undefined for an error status without JSON): it returns the result,
 * undefined to poll again, or throws to count the answer as a failed poll. A control plane that
 * does not answer (restarting) is polled again too.
 */
export async function pollAdmin<T, R>(url: string, timeoutMs: number, intervalMs: number | undefined, check: (status: number, body: T) => R | undefined): Promise<Polled<T, R>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: string | undefined;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.max(100, Math.min(5000, deadline - Date.now()))) });
      const text = await res.text();
      let body: T;
      try {
        body = JSON.parse(text) as T;
      } catch {
        // Not JSON (express's own 404 page): the status alone tells.
        if (res.ok) throw new Error(`${url} did not answer JSON`);
        body = undefined as T;
      }
      const done = check(res.status, body);
      last = body;
      lastError = undefined;
      if (done !== undefined) return { done, last, lastError };
    } catch (e) {
      lastError = whyNoAnswer(e);
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs ?? 250, Math.max(0, deadline - Date.now()))));
  }
  return { ...(last !== undefined ? { last } : {}), ...(lastError ? { lastError } : {}) };
}

/** `cds SYNCED, eds NACKED (rejected version 1a2b: <client's message>), ...` */
function describeTypes(p: ProxyStatus): string {
  return Object.entries(p.types)
    .map(([t, s]) => `${t} ${s.state}${s.state === 'SYNCED' || !s.reason ? '' : ` (${s.reason})`}`)
    .join(', ');
}

/** `60s`, `500ms`, `2m`, `1h`; a bare number is seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`bad duration "${text}" (e.g. 60s, 500ms, 2m)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}
