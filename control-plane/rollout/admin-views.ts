// What the admin API answers about canaries and fault experiments (GET /debug/canaries,
// /debug/experiments), as the command line reads it, and how the command line shows it.
import type { CanaryEntry, ExperimentEntry } from './controller.ts';

/** A canary as GET /debug/canaries answers it: the controller's own entry (a type only: the CLI loads no controller). */
export type CanaryView = CanaryEntry;

/** A fault experiment as GET /debug/experiments answers it. */
export type ExperimentView = ExperimentEntry;

/** `Canary/default/reviews` -> `default/reviews`. */
export function shortKey(key: string): string {
  return key.split('/').slice(1).join('/');
}

/** `ns/name` as given on the command line; a bare name is in namespace default (as kubectl's). */
export function parseRef(text: string): { namespace: string; name: string } {
  const parts = text.split('/');
  if (parts.length === 1 && parts[0]) return { namespace: 'default', name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { namespace: parts[0], name: parts[1] };
  throw new Error(`"${text}" is not NAMESPACE/NAME (e.g. default/reviews)`);
}

/** `25% v3 (step 2/4)`; `handed back to the VirtualService's weights` after a handBack finish. */
export function canaryWeight(c: CanaryView): string {
  if (c.handedBack) return 'handed back to the VirtualService\'s weights';
  return `${c.weight}% ${c.canary} (step ${c.step + 1}/${c.steps.length})`;
}

/** One line per canary: `default/reviews: Progressing, 25% v3 (step 2/4), 1 failed check: <reason>`. */
export function describeCanary(c: CanaryView): string {
  const checks = c.failedChecks ? `, ${c.failedChecks} failed check${c.failedChecks === 1 ? '' : 's'}` : '';
  return `${shortKey(c.key)}: ${c.phase}, ${canaryWeight(c)}${checks}${c.reason ? `: ${c.reason}` : ''}`;
}

/** `in 8s`, `in 2m05s`, `due` (past), `-` (none). */
export function until(iso: string | undefined, now: number): string {
  if (!iso) return '-';
  const ms = Date.parse(iso) - now;
  if (!Number.isFinite(ms)) return iso;
  return ms <= 0 ? 'due' : `in ${span(ms)}`;
}

/** `8s`, `2m05s`, `1h02m`. */
export function span(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function canaryTable(canaries: CanaryView[], now: number): string {
  return table(
    ['CANARY', 'HOST/ROUTE', 'PHASE', 'WEIGHT', 'STEP', 'FAILED', 'NEXT CHECK', 'REASON'],
    canaries.map((c) => [
      shortKey(c.key),
      `${c.gatewayHost ?? c.host}/${c.route}`,
      c.phase,
      c.handedBack ? 'VS' : `${c.weight}%`,
      `${c.step + 1}/${c.steps.length}`,
      String(c.failedChecks),
      c.phase === 'Progressing' ? until(c.nextCheckAt, now) : '-',
      c.reason ?? '',
    ]),
  );
}

export function experimentTable(experiments: ExperimentView[], now: number): string {
  return table(
    ['EXPERIMENT', 'HOST', 'ROUTES', 'PHASE', 'EXPIRES', 'REASON'],
    experiments.map((e) => [
      shortKey(e.key),
      e.host,
      e.routes.length ? e.routes.join(',') : '(all)',
      e.phase,
      e.phase === 'Running' ? until(e.expiresAt, now) : e.expiresAt,
      e.reason ?? '',
    ]),
  );
}
