// Per-pod choices, written as labels and annotations under meshpilot.io/. Every value is checked;
// an unknown key or value is an error naming it, never a guess, since a silently ignored typo would
// leave a pod meshed (or not) against its owner's intent.
import { z } from 'zod';
import { isIPv4Cidr, LOG_LEVELS, QUANTITY, type LogLevel } from './config.ts';

export const PREFIX = 'meshpilot.io/';
/** Label or annotation: "true" or "false" on a pod; the namespace label takes "enabled"/"disabled". */
export const INJECT = 'meshpilot.io/inject';
/** Set by the injector on the pods it injected (the Envoy image it added). */
export const INJECTED = 'meshpilot.io/injected';

export const ANNOTATIONS = {
  proxyCpu: 'meshpilot.io/proxy-cpu',
  proxyMemory: 'meshpilot.io/proxy-memory',
  proxyCpuLimit: 'meshpilot.io/proxy-cpu-limit',
  proxyMemoryLimit: 'meshpilot.io/proxy-memory-limit',
  proxyLogLevel: 'meshpilot.io/proxy-log-level',
  excludeInboundPorts: 'meshpilot.io/exclude-inbound-ports',
  excludeOutboundPorts: 'meshpilot.io/exclude-outbound-ports',
  excludeOutboundCIDRs: 'meshpilot.io/exclude-outbound-cidrs',
  /** `router`: a gateway pod (Envoy is the workload: no traffic capture, node type router). */
  proxyType: 'meshpilot.io/proxy-type',
} as const;

const KNOWN = new Set<string>([INJECT, INJECTED, ...Object.values(ANNOTATIONS)]);

export interface PodOverrides {
  requests: { cpu?: string; memory?: string };
  limits: { cpu?: string; memory?: string };
  logLevel?: LogLevel;
  excludeInboundPorts: number[];
  excludeOutboundPorts: number[];
  excludeOutboundCIDRs: string[];
  /** router: a gateway; absent: a sidecar. */
  proxyType?: 'router';
}

/** A bad label or annotation, with its field path in the object (e.g. metadata.annotations["..."]). */
export class InjectionInputError extends Error {
  constructor(readonly fieldPath: (string | number)[], message: string) {
    super(`${formatPath(fieldPath)}: ${message}`);
    this.name = 'InjectionInputError';
  }
}

export function formatPath(p: readonly (string | number)[]): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : /^[A-Za-z_][\w]*$/.test(s) ? `${i ? '.' : ''}${s}` : `[${JSON.stringify(s)}]`)).join('');
}

const quantity = z.string().trim().regex(QUANTITY, 'expected a Kubernetes quantity such as 100m, 2, 128Mi or 1Gi');
const list = (item: z.ZodType<unknown>, what: string) =>
  z.string().transform((s, ctx) => {
    const parts = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
    const out: unknown[] = [];
    for (const part of parts) {
      const r = item.safeParse(part);
      if (r.success) out.push(r.data);
      else ctx.addIssue({ code: 'custom', message: `"${part}" is not ${what} (expected a comma-separated list)` });
    }
    return out;
  });
const portItem = z.string().regex(/^\d{1,5}$/).transform(Number).refine((n) => n >= 1 && n <= 65535);
const cidrItem = z.string().refine(isIPv4Cidr);

const VALUE_SCHEMAS: Record<string, z.ZodType<unknown>> = {
  [ANNOTATIONS.proxyCpu]: quantity,
  [ANNOTATIONS.proxyMemory]: quantity,
  [ANNOTATIONS.proxyCpuLimit]: quantity,
  [ANNOTATIONS.proxyMemoryLimit]: quantity,
  [ANNOTATIONS.proxyLogLevel]: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }),
  [ANNOTATIONS.excludeInboundPorts]: list(portItem, 'a port (1-65535)'),
  [ANNOTATIONS.excludeOutboundPorts]: list(portItem, 'a port (1-65535)'),
  [ANNOTATIONS.excludeOutboundCIDRs]: list(cidrItem, 'an IPv4 CIDR block such as 10.0.0.0/8'),
  [ANNOTATIONS.proxyType]: z.enum(['sidecar', 'router'], { error: 'expected sidecar or router' }),
};

function parseValue<T>(key: string, value: string, at: (string | number)[]): T {
  const r = VALUE_SCHEMAS[key]!.safeParse(value);
  if (!r.success) throw new InjectionInputError(at, r.error.issues.map((i) => i.message).join('; '));
  return r.data as T;
}

/** Rejects unknown meshpilot.io/ keys: a misspelt override must not be silently ignored. */
export function checkKnownKeys(map: Record<string, string> | undefined, base: (string | number)[]): void {
  for (const key of Object.keys(map ?? {})) {
    if (key.startsWith(PREFIX) && !KNOWN.has(key)) {
      throw new InjectionInputError([...base, key], `unknown meshpilot annotation or label; known: ${[...KNOWN].sort().join(', ')}`);
    }
  }
}

/** The overrides a pod asks for; `base` is the path of the pod's metadata (for messages). */
export function parseOverrides(annotations: Record<string, string> | undefined, base: (string | number)[]): PodOverrides {
  const a = annotations ?? {};
  checkKnownKeys(a, [...base, 'annotations']);
  const get = <T>(key: string): T | undefined => (a[key] === undefined ? undefined : parseValue<T>(key, a[key]!, [...base, 'annotations', key]));
  const logLevel = get<LogLevel>(ANNOTATIONS.proxyLogLevel);
  const requests = { cpu: get<string>(ANNOTATIONS.proxyCpu), memory: get<string>(ANNOTATIONS.proxyMemory) };
  const limits = { cpu: get<string>(ANNOTATIONS.proxyCpuLimit), memory: get<string>(ANNOTATIONS.proxyMemoryLimit) };
  return {
    requests: dropUndefined(requests),
    limits: dropUndefined(limits),
    ...(logLevel ? { logLevel } : {}),
    excludeInboundPorts: get<number[]>(ANNOTATIONS.excludeInboundPorts) ?? [],
    excludeOutboundPorts: get<number[]>(ANNOTATIONS.excludeOutboundPorts) ?? [],
    excludeOutboundCIDRs: get<string[]>(ANNOTATIONS.excludeOutboundCIDRs) ?? [],
    ...(get<string>(ANNOTATIONS.proxyType) === 'router' ? { proxyType: 'router' as const } : {}),
  };
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
