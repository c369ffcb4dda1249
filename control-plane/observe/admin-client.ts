// How the command line reaches a running control plane's admin API (canary, experiment, wait, explain --admin):
// one `--admin` flag with serve's default address and an environment variable, and errors that
// say which URL was tried and how to point at another one.
import { Option, type Command } from 'commander';
import { adminBase } from './admin-url.ts';

/** serve's default `--admin-listen`, as a URL. */
export const DEFAULT_ADMIN = 'http://127.0.0.1:15014';
export const ADMIN_ENV = 'MESHPILOT_ADMIN';

export function adminOption(): Option {
  return new Option('--admin <url>', `admin API of the control plane (serve's --admin-listen)`).env(ADMIN_ENV).default(DEFAULT_ADMIN);
}

/** The admin URL to use and where it came from (for the error when it cannot be reached). */
export interface AdminTarget {
  url: string;
  from: 'flag' | 'env' | 'default';
}

export function adminTarget(cmd: Command): AdminTarget {
  const url = adminBase(String(cmd.opts().admin ?? DEFAULT_ADMIN));
  const source = cmd.getOptionValueSource('admin');
  return { url, from: source === 'env' ? 'env' : source === 'cli' ? 'flag' : 'default' };
}

/** A failed admin call: `status` is the HTTP status, absent when no answer came at all. */
export class AdminError extends Error {
  constructor(message: string, readonly status?: number, readonly body?: Record<string, unknown>) {
    super(message);
  }
}

/** Why a fetch got no answer, in words (`connection refused` rather than fetch's `fetch failed`). */
export function whyNoAnswer(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') return 'connection refused';
  if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return 'unknown host';
  if ((err as Error).name === 'TimeoutError') return 'no answer in time';
  return cause?.message ?? (err instanceof Error ? err.message : String(err));
}

/** The sentence for an admin API that did not answer: which URL, why, and how to give another. */
export function unreachable(target: AdminTarget, err: unknown): string {
  const why = whyNoAnswer(err);
  const hint =
    target.from === 'default' ? `that is serve's default admin address; give the control plane's with --admin URL or ${ADMIN_ENV}`
    : target.from === 'env' ? `the URL comes from ${ADMIN_ENV}; serve prints its admin address at start ("admin API: ...")`
    : `check --admin: serve prints its admin address at start ("admin API: ...")`;
  return `cannot reach the admin API at ${target.url} (${why}): ${hint}`;
}

/**
 * One call to the admin API. Throws AdminError: without `status` when nothing answered (message
 * from `unreachable`), with it for an answer other than 2xx (message: the answer's `error`).
 */
export async function adminCall<T>(target: AdminTarget, method: 'GET' | 'POST', path: string, timeoutMs = 10_000, body?: unknown): Promise<T> {
  let res: Response;
  try {
    const json = body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
    res = await fetch(`${target.url}${path}`, { method, signal: AbortSignal.timeout(timeoutMs), ...json });
  } catch (e) {
    throw new AdminError(unreachable(target, e));
  }
  const text = await res.text();
  let answer: unknown;
  try {
    answer = text ? JSON.parse(text) : undefined;
  } catch {
    answer = undefined; // express's own 404 page, a proxy's error page
  }
  if (!res.ok) {
    const json = answer && typeof answer === 'object' && !Array.isArray(answer) ? (answer as Record<string, unknown>) : undefined;
    const error = typeof json?.error === 'string' ? json.error : undefined;
    throw new AdminError(error ?? `${method} ${path} answered ${res.status} ${res.statusText}`, res.status, json);
  }
  if (answer === undefined && text) throw new AdminError(`${method} ${path} did not answer JSON (is ${target.url} meshpilot's admin API?)`, res.status);
  return answer as T;
}
