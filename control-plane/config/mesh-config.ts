// The mesh config file (`--mesh-config FILE`): the part of Istio's MeshConfig YAML that meshpilot
// acts on, so the `mesh` key of a cluster's `istio` ConfigMap can be pasted (or mounted) as is:
// trustDomain, rootNamespace, outboundTrafficPolicy, localityLbSetting and extensionProviders (the
// ext_authz ones are used; other provider types are known by name). Every other MeshConfig field is ignored, said in
// one warning line. Errors are positioned (file:line:col field.path: message) and stop the command:
// a half-read mesh config would silently change what the policies mean.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { ExtensionProvider } from '../model/extension-providers.ts';
import type { MeshSettings } from '../model/mesh-identity.ts';
import { problemsFromIssues } from './issues.ts';
import { type FieldPath, formatPath, locate } from './paths.ts';
import { dnsLabel, duration, durationMs, isRecord } from './schemas/common.ts';
import { LocalityLbSetting } from './schemas/locality-lb.ts';

// HTTP statuses Envoy's StatusCode enum defines (envoy/type/v3/http_status.proto): status_on_error
// must be one of them.
const ENVOY_STATUS_CODES = new Set([100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511]);

const port = z.union([z.number(), z.string()], { error: 'must be a port number' }).superRefine((v, ctx) => {
  const n = Number(v);
  if (!(typeof v === 'number' || /^\d+$/.test(v)) || !Number.isInteger(n) || n < 1 || n > 65535) ctx.addIssue({ code: 'custom', message: 'must be a port number from 1 to 65535', input: v });
});
const statusCode = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  if (!ENVOY_STATUS_CODES.has(Number(v))) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not an HTTP status Envoy can send (e.g. "403", "503")`, input: v });
});
const headerNames = z.array(z.string().min(1, { error: 'must not be empty' }));
const service = z.string().regex(/^([a-z0-9-]+\/)?[A-Za-z0-9.-]+$/, { error: 'write the service as <host> or <namespace>/<host>, e.g. ext-authz.foo.svc.cluster.local' });
const body = z.object({
  maxRequestBytes: z.number().int().min(1).optional(),
  allowPartialMessage: z.boolean().optional(),
  packAsBytes: z.boolean().optional(),
});

const httpProvider = z.object({
  service,
  port,
  timeout: duration().optional(),
  pathPrefix: z.string().regex(/^\//, { error: 'must start with "/"' }).optional(),
  failOpen: z.boolean().optional(),
  statusOnError: statusCode.optional(),
  includeRequestHeadersInCheck: headerNames.optional(),
  /** Deprecated in Istio for includeRequestHeadersInCheck; same meaning. */
  includeHeadersInCheck: headerNames.optional(),
  includeAdditionalHeadersInCheck: z.record(z.string(), z.string()).optional(),
  includeRequestBodyInCheck: body.optional(),
  headersToUpstreamOnAllow: headerNames.optional(),
  headersToDownstreamOnDeny: headerNames.optional(),
});

const grpcProvider = z.object({
  service,
  port,
  timeout: duration().optional(),
  failOpen: z.boolean().optional(),
  statusOnError: statusCode.optional(),
  includeRequestBodyInCheck: body.optional(),
});

const AUTHZ_KINDS = { envoyExtAuthzHttp: httpProvider, envoyExtAuthzGrpc: grpcProvider } as const;

const provider = z.object({ name: z.string().min(1, { error: 'must not be empty' }) }).catchall(z.unknown()).superRefine((p, ctx) => {
  const kinds = Object.keys(p).filter((k) => k !== 'name');
  if (kinds.length !== 1) ctx.addIssue({ code: 'custom', message: `an extension provider has one type (e.g. envoyExtAuthzHttp or envoyExtAuthzGrpc), got ${kinds.length ? kinds.join(', ') : 'none'}`, path: [] });
  for (const k of kinds) {
    const schema = AUTHZ_KINDS[k as keyof typeof AUTHZ_KINDS];
    if (!schema) continue;
    const r = schema.safeParse(p[k]);
    if (!r.success) for (const i of r.error.issues) ctx.addIssue({ ...i, path: [k, ...i.path] } as z.core.$ZodRawIssue);
  }
});

export const MeshConfigFile = z.object({
  trustDomain: z.string().regex(/^[a-z0-9.-]+$/, { error: 'a trust domain is a DNS-like name, e.g. cluster.local' }).optional(),
  rootNamespace: dnsLabel.optional(),
  outboundTrafficPolicy: z.object({ mode: z.enum(['ALLOW_ANY', 'REGISTRY_ONLY'], { error: 'must be ALLOW_ANY or REGISTRY_ONLY' }).optional() }).optional(),
  extensionProviders: z.array(provider).optional(),
  /** The default for every destination whose DestinationRule sets none (as a DestinationRule writes it). */
  localityLbSetting: LocalityLbSetting.optional(),
});

/** Provider names must be unique (policies name them); checked on the raw input so it is said alongside other errors. */
function duplicateNames(js: Record<string, unknown>): Array<{ path: FieldPath; message: string }> {
  const out: Array<{ path: FieldPath; message: string }> = [];
  const seen = new Set<unknown>();
  const list = js['extensionProviders'];
  if (Array.isArray(list)) list.forEach((p, i) => {
    const name = isRecord(p) ? p['name'] : undefined;
    if (typeof name !== 'string') return;
    if (seen.has(name)) out.push({ path: ['extensionProviders', i, 'name'], message: `duplicate extension provider name ${JSON.stringify(name)}` });
    seen.add(name);
  });
  return out;
}

/** What the file sets, and one line naming what it ignores (or none). */
export interface MeshConfigResult { settings: Partial<MeshSettings>; warning?: string }

const KNOWN_TOP = new Set(['trustDomain', 'rootNamespace', 'outboundTrafficPolicy', 'extensionProviders', 'localityLbSetting']);

function ignoredFields(js: Record<string, unknown>): string[] {
  const out = Object.keys(js).filter((k) => !KNOWN_TOP.has(k));
  const otp = js['outboundTrafficPolicy'];
  if (isRecord(otp)) out.push(...Object.keys(otp).filter((k) => k !== 'mode').map((k) => `outboundTrafficPolicy.${k}`));
  const providers = js['extensionProviders'];
  if (Array.isArray(providers)) {
    providers.forEach((p, i) => {
      if (!isRecord(p)) return;
      for (const [kind, schema] of Object.entries(AUTHZ_KINDS)) {
        const body = p[kind];
        if (!isRecord(body)) continue;
        const known = new Set(Object.keys(schema.shape));
        out.push(...Object.keys(body).filter((k) => !known.has(k)).map((k) => `extensionProviders[${i}].${kind}.${k}`));
      }
    });
  }
  return out;
}

function providerOf(p: z.infer<typeof provider>): ExtensionProvider {
  const [kind] = Object.keys(p).filter((k) => k !== 'name');
  if (kind === 'envoyExtAuthzHttp' || kind === 'envoyExtAuthzGrpc') {
    const b = p[kind] as z.infer<typeof httpProvider>;
    const headers = b.includeRequestHeadersInCheck ?? b.includeHeadersInCheck;
    return {
      name: p.name,
      kind: kind === 'envoyExtAuthzHttp' ? 'http' : 'grpc',
      service: b.service,
      port: Number(b.port),
      ...(b.timeout ? { timeoutMs: durationMs(b.timeout) } : {}),
      ...(b.pathPrefix ? { pathPrefix: b.pathPrefix } : {}),
      ...(b.failOpen ? { failOpen: true } : {}),
      ...(b.statusOnError !== undefined ? { statusOnError: Number(b.statusOnError) } : {}),
      ...(headers?.length ? { includeRequestHeadersInCheck: headers } : {}),
      ...(b.includeAdditionalHeadersInCheck ? { includeAdditionalHeadersInCheck: b.includeAdditionalHeadersInCheck } : {}),
      ...(b.includeRequestBodyInCheck ? { includeRequestBodyInCheck: b.includeRequestBodyInCheck } : {}),
      ...(b.headersToUpstreamOnAllow?.length ? { headersToUpstreamOnAllow: b.headersToUpstreamOnAllow } : {}),
      ...(b.headersToDownstreamOnDeny?.length ? { headersToDownstreamOnDeny: b.headersToDownstreamOnDeny } : {}),
    };
  }
  return { name: p.name, kind: 'other', type: kind ?? 'unknown' };
}

/** Reads a mesh config text; throws an Error whose message is the positioned error lines. */
export function parseMeshConfig(file: string, text: string): MeshConfigResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (path: FieldPath) => {
    const p = locate(doc, lineCounter, file, path);
    return `${p.file}:${p.line}:${p.col}`;
  };
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new Error(`${file}:${pos?.line ?? 1}:${pos?.col ?? 1}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const js: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (!isRecord(js)) throw new Error(`${file}:1:1: a mesh config is a map of MeshConfig fields (trustDomain, extensionProviders, ...)`);
  const r = MeshConfigFile.safeParse(js);
  const problems = [...(r.success ? [] : problemsFromIssues(r.error.issues, js, MeshConfigFile)), ...duplicateNames(js)];
  if (!r.success || problems.length) throw new Error(problems.map((p) => `${at(p.path)} ${formatPath(p.path)}: ${p.message}`).join('\n'));
  const v = r.data;
  const ignored = ignoredFields(js);
  return {
    settings: {
      ...(v.trustDomain ? { trustDomain: v.trustDomain } : {}),
      ...(v.rootNamespace ? { rootNamespace: v.rootNamespace } : {}),
      ...(v.outboundTrafficPolicy?.mode ? { outboundTrafficPolicy: { mode: v.outboundTrafficPolicy.mode } } : {}),
      ...(v.extensionProviders ? { extensionProviders: v.extensionProviders.map(providerOf) } : {}),
      ...(v.localityLbSetting ? { localityLbSetting: v.localityLbSetting } : {}),
    },
    ...(ignored.length ? { warning: `${file}: ignoring MeshConfig fields meshpilot does not use: ${ignored.join(', ')}` } : {}),
  };
}

/** Reads the mesh config file. */
export function readMeshConfig(file: string): MeshConfigResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read the mesh config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseMeshConfig(file, text);
}

/**
 * The mesh settings a command runs with: Istio's defaults, then the file, then the flags given on
 * the command line (`explicit`: only flags the user typed, not their defaults).
 */
export function meshSettings(defaults: MeshSettings, file: string | undefined, explicit: Partial<MeshSettings>, warn: (line: string) => void): MeshSettings {
  const fromFile = file ? readMeshConfig(file) : undefined;
  if (fromFile?.warning) warn(fromFile.warning);
  return { ...defaults, ...fromFile?.settings, ...explicit };
}
