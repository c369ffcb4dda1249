// `meshpilot experiment start`: the FaultExperiment rule made from the command's flags, checked by
// the same validator as every rule file (config/load.ts), and written atomically into a config
// directory (where serve picks it up) or printed (for kubectl apply -f -).
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GRPC_STATUS_CODES } from '../config/schemas/grpc-status.ts';

export const EXPERIMENT_API_VERSION = 'traffic.meshpilot.io/v1alpha1';

export interface ExperimentFlags {
  name: string;
  namespace: string;
  host: string;
  route: string[];
  abortHttp?: string;
  abortGrpc?: string;
  delay?: string;
  percent: string;
  /** `--for`, already parsed. */
  forMs: number;
  guardMinSuccess?: string;
  guardMinRequests?: string;
  guardWindow?: string;
}

/** A number where the text is one; otherwise the text, for the schema to name what is wrong. */
function numberOr(text: string): number | string {
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

/** `14` or `unavailable` -> `UNAVAILABLE`; an unknown code stays as given (the schema names it). */
export function grpcStatusName(text: string): string {
  if (/^\d+$/.test(text.trim())) return Object.entries(GRPC_STATUS_CODES).find(([, code]) => code === Number(text))?.[0] ?? text;
  return text.trim().toUpperCase();
}

/** RFC 3339 in UTC, whole seconds (rounded up: an experiment never ends before its --for). */
export function rfc3339(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The FaultExperiment document (apiVersion, kind, metadata, spec), as it will be written. */
export function experimentDocument(f: ExperimentFlags, now: number): Record<string, unknown> {
  const percentage = { value: numberOr(f.percent) };
  const fault: Record<string, unknown> = {};
  if (f.delay !== undefined) fault.delay = { fixedDelay: f.delay, percentage };
  if (f.abortHttp !== undefined || f.abortGrpc !== undefined) {
    fault.abort = {
      ...(f.abortHttp !== undefined ? { httpStatus: numberOr(f.abortHttp) } : {}),
      ...(f.abortGrpc !== undefined ? { grpcStatus: grpcStatusName(f.abortGrpc) } : {}),
      percentage,
    };
  }
  const guarded = f.guardMinSuccess !== undefined || f.guardMinRequests !== undefined || f.guardWindow !== undefined;
  const guard = {
    ...(f.guardMinSuccess !== undefined ? { minSuccessRate: numberOr(f.guardMinSuccess) } : {}),
    ...(f.guardMinRequests !== undefined ? { minRequests: numberOr(f.guardMinRequests) } : {}),
    ...(f.guardWindow !== undefined ? { window: f.guardWindow } : {}),
  };
  return {
    apiVersion: EXPERIMENT_API_VERSION,
    kind: 'FaultExperiment',
    metadata: { name: f.name, namespace: f.namespace },
    spec: {
      target: { host: f.host, ...(f.route.length ? { routes: f.route } : {}) },
      fault,
      expiresAt: rfc3339(now + f.forMs),
      ...(guarded ? { guard } : {}),
    },
  };
}

/** The flag each field of the document comes from, to name it in an error (longest prefix wins). */
const FLAG_OF: Array<[string, string]> = [
  ['metadata.name', 'NAME'],
  ['metadata.namespace', '--namespace'],
  ['spec.target.host', '--host'],
  ['spec.target.routes', '--route'],
  ['spec.target', '--host/--route'],
  ['spec.fault.abort.httpStatus', '--abort-http'],
  ['spec.fault.abort.grpcStatus', '--abort-grpc'],
  ['spec.fault.abort.percentage', '--percent'],
  ['spec.fault.abort', '--abort-http/--abort-grpc'],
  ['spec.fault.delay.fixedDelay', '--delay'],
  ['spec.fault.delay.percentage', '--percent'],
  ['spec.fault.delay', '--delay'],
  ['spec.fault', '--abort-http, --abort-grpc or --delay'],
  ['spec.expiresAt', '--for'],
  ['spec.guard.minSuccessRate', '--guard-min-success'],
  ['spec.guard.minRequests', '--guard-min-requests'],
  ['spec.guard.window', '--guard-window'],
  ['spec.guard', '--guard-*'],
];

export function flagOf(fieldPath: string): string | undefined {
  let best: [string, string] | undefined;
  for (const entry of FLAG_OF) {
    const [prefix] = entry;
    const match = fieldPath === prefix || fieldPath.startsWith(`${prefix}.`) || fieldPath.startsWith(`${prefix}[`);
    if (match && (!best || prefix.length > best[0].length)) best = entry;
  }
  return best?.[1];
}

/** `--delay: spec.fault.delay.fixedDelay: invalid duration "2"...`: a schema error in the flags' words. */
export function flagError(e: { path: string; message: string }): string {
  const flag = flagOf(e.path);
  return `${flag ? `${flag}: ` : ''}${e.path ? `${e.path}: ` : ''}${e.message}`;
}

/** The file `start` writes in a config directory. */
export function experimentFile(dir: string, name: string): string {
  return path.join(dir, `experiment-${name}.yaml`);
}

/**
 * Writes `text` to `file` so that a watcher sees the old file or the new one, never half of one:
 * a temp file in the same directory (not ending in .yaml, so serve does not read it), then rename.
 */
export function writeAtomically(file: string, text: string): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, text, { flag: 'wx' });
    renameSync(temp, file);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  }
}
