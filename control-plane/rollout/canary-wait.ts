// `meshpilot wait --canary NS/NAME`: polls GET /debug/canaries (observe/wait.ts's poll) until the
// canary is promoted or rolled back, telling each change on the way, for deploy pipelines.
import { adminBase } from '../observe/admin-url.ts';
import { pollAdmin } from '../observe/wait.ts';
import { canaryWeight, describeCanary, shortKey, type CanaryView } from './admin-views.ts';

/** Exit codes of `wait --canary`: a rollback is not a timeout, a pipeline may tell them apart. */
export const CANARY_EXIT = { promoted: 0, timeout: 1, rolledBack: 3 } as const;

export interface CanaryWaitOptions {
  admin: string;
  namespace: string;
  name: string;
  timeoutMs: number;
  intervalMs?: number;
  /** One line per change seen: weight, phase, a failed check. */
  onChange?: (line: string) => void;
}

export interface CanaryWaitResult {
  outcome: 'promoted' | 'rolledBack' | 'timeout' | 'error';
  message: string;
  exitCode: number;
  /** The canary as last seen. */
  canary?: CanaryView;
}

export async function waitForCanary(opts: CanaryWaitOptions): Promise<CanaryWaitResult> {
  const base = adminBase(opts.admin);
  const url = `${base}/debug/canaries`;
  const key = `Canary/${opts.namespace}/${opts.name}`;
  const ref = `${opts.namespace}/${opts.name}`;
  const say = opts.onChange ?? (() => {});
  let seen: CanaryView | undefined;
  let missingSaid = false;

  const polled = await pollAdmin<CanaryView[], CanaryWaitResult>(url, opts.timeoutMs, opts.intervalMs, (status, body) => {
    // An admin API without the route will not grow one by waiting.
    if (status === 404) return { outcome: 'error', exitCode: 1, message: `${url} answered 404: this control plane does not run canaries (an older meshpilot?)` };
    if (status !== 200 || !Array.isArray(body)) throw new Error(`admin API answered ${status}`);
    const now = body.find((c) => c.key === key);
    if (!now) {
      if (seen) say(`${ref}: gone from the control plane (rule deleted, or rejected: see meshpilot validate)`);
      else if (!missingSaid) say(`${ref}: not known to the control plane yet; waiting for it`);
      missingSaid = true;
      seen = undefined;
      return undefined;
    }
    for (const line of changes(seen, now)) say(line);
    seen = now;
    if (now.phase === 'Promoted') return { outcome: 'promoted', exitCode: CANARY_EXIT.promoted, canary: now, message: `canary ${ref} promoted: ${canaryWeight(now)}${now.reason ? `: ${now.reason.replace(/^promoted:\s*/, '')}` : ''}` };
    if (now.phase === 'RolledBack') return { outcome: 'rolledBack', exitCode: CANARY_EXIT.rolledBack, canary: now, message: `canary ${ref} rolled back${now.reason ? `: ${now.reason.replace(/^rolled back:\s*/, '')}` : ''}` };
    return undefined;
  });
  if (polled.done) return polled.done;

  const after = `timed out after ${Math.round(opts.timeoutMs / 100) / 10}s`; // as wait --until-synced says it
  const failed = polled.lastError ? ` (last poll failed: ${polled.lastError})` : '';
  if (!polled.last) return { outcome: 'timeout', exitCode: CANARY_EXIT.timeout, message: `${after}: could not read ${url}: ${polled.lastError}` };
  if (!seen) return { outcome: 'timeout', exitCode: CANARY_EXIT.timeout, message: `${after}: no canary ${ref} at ${base} (known: ${polled.last.map((c) => shortKey(c.key)).join(', ') || 'none'})${failed}` };
  return { outcome: 'timeout', exitCode: CANARY_EXIT.timeout, canary: seen, message: `${after}: ${describeCanary(seen)}${failed}` };
}

/** The lines that tell what changed between two sightings of a canary (all of it on the first). */
export function changes(before: CanaryView | undefined, now: CanaryView): string[] {
  const ref = shortKey(now.key);
  if (!before) return [describeCanary(now)];
  const lines: string[] = [];
  if (now.failedChecks > before.failedChecks) lines.push(`${ref}: check failed at ${before.weight}% (${now.failedChecks} failed)${now.reason ? `: ${now.reason}` : ''}`);
  if (now.weight !== before.weight || now.step !== before.step) {
    const why = now.reason && !lines.length ? `: ${now.reason}` : '';
    lines.push(`${ref}: ${before.weight}% -> ${canaryWeight(now)}${now.phase !== before.phase ? `, ${now.phase}` : ''}${why}`);
  } else if (now.phase !== before.phase) {
    lines.push(describeCanary(now));
  }
  return lines;
}
