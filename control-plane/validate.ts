// meshpilot validate: the rules' own errors and warnings, then every resource they generate, for
// both kinds of client in every namespace and in every locality and network that endpoints are in,
// checked against Envoy's protos. Lines go to `out` as they are found; nothing of the mesh's
// output is kept beyond what the translator's memo shares between callers.
//
// The callers' configs overlap almost entirely (a cluster is the same for every namespace, an
// endpoint view the same for every caller in a zone), and the translator's memo hands each caller
// the same objects, so each distinct resource is checked once (ResourceChecks) and its result
// reported for every caller that gets it: the output is what checking each caller's whole config
// would print, at the cost of checking the mesh once per view.
import { createHash } from 'node:crypto';
import { loadDirectory } from './config/load.ts';
import { checkResource as checkEnvoyResource, type Violation } from './envoy/check.ts';
import type { NetworkGateways } from './kube/network-gateways.ts';
import { compile, formatIssue } from './model/compile.ts';
import { DEFAULT_MESH, type MeshSettings } from './model/mesh-identity.ts';
import type { Model } from './model/types.ts';
import { NO_PROGRESS, type Progress } from './progress.ts';
import { TranslateMemo } from './translate/memo.ts';
import type { Proxy } from './translate/proxy.ts';
import { translate, type Resource } from './translate/translate.ts';
import { TYPE_ORDER } from './translate/type-urls.ts';

export interface ValidateOptions {
  configDir: string;
  networkGateways?: NetworkGateways;
  /** The mesh's SPIFFE trust domain (default cluster.local). */
  trustDomain?: string;
  /** The whole mesh settings (--mesh-config); over trustDomain. */
  mesh?: MeshSettings;
}

const NONE: readonly Violation[] = Object.freeze([]);

/** Envoy's verdict on each distinct resource, computed once: by object, then by content. */
export class ResourceChecks {
  private byObject = new WeakMap<object, readonly Violation[]>();
  private byContent = new Map<string, readonly Violation[]>();
  /** Resources actually checked (the rest were answered from memory). */
  checked = 0;

  /** `checkResource`: Envoy's checks (another only in tests). */
  constructor(private readonly checkResource: (r: Resource) => Violation[] = checkEnvoyResource) {}

  check(r: Resource): readonly Violation[] {
    const known = this.byObject.get(r);
    if (known) return known;
    // A digest, not the text: the text of every distinct resource would be the mesh's config again.
    const key = createHash('sha256').update(JSON.stringify(r)).digest('base64');
    let v = this.byContent.get(key);
    if (!v) {
      this.checked++;
      const found = this.checkResource(r);
      v = found.length ? found : NONE;
      this.byContent.set(key, v);
    }
    this.byObject.set(r, v);
    return v;
  }
}

type Caller = Pick<Proxy, 'kind' | 'namespace' | 'locality' | 'network'>;

/**
 * The callers whose config is checked: each kind of client in every namespace, with no locality and
 * in every locality and network that endpoints are in (each sees its own priorities and gateways).
 */
function callersOf(model: Model, namespaces: readonly string[]): Caller[] {
  const topologies = new Map<string, Pick<Proxy, 'locality' | 'network'>>([['', { locality: { region: '', zone: '', subzone: '' } }]]);
  for (const s of model.services) for (const e of s.endpoints) {
    topologies.set(JSON.stringify([e.locality, e.network]), { locality: e.locality, ...(e.network ? { network: e.network } : {}) });
  }
  const out: Caller[] = [];
  for (const namespace of namespaces) {
    for (const kind of ['envoy', 'grpc'] as const) for (const t of topologies.values()) out.push({ kind, namespace, ...t });
  }
  return out;
}

/**
 * Reads and compiles the rules, printing their errors and warnings. Returns the model and counts
 * only: the rules themselves (their text is kept for positions) are not needed past this point.
 */
function compileRules(o: ValidateOptions, print: (line: string) => void, progress: Progress) {
  const load = loadDirectory(o.configDir, (done, total) => progress.update(`reading rule files: ${done}/${total}`));
  progress.update(`compiling ${load.objects.length} rules`);
  const state = compile(o.networkGateways ? { ...load, networkGateways: o.networkGateways } : load, [], undefined, o.mesh ?? { ...DEFAULT_MESH, trustDomain: o.trustDomain ?? DEFAULT_MESH.trustDomain });
  for (const e of state.errors) print(`error: ${formatIssue(e)}`);
  for (const w of state.warnings) print(`warning: ${formatIssue(w)}`);
  const namespaces = [...new Set(['default', ...state.accepted.map((a) => a.namespace)])].sort();
  return { model: state.model, namespaces, rules: state.accepted.length, errors: state.errors.length, warnings: state.warnings.length };
}

/** Runs the checks, writing each finding and the summary to `out`; returns the exit code. */
export function validateRules(o: ValidateOptions, out: (line: string) => void, progress: Progress = NO_PROGRESS, checks = new ResourceChecks()): number {
  const print = (line: string) => {
    progress.clear();
    out(line);
  };
  try {
    const { model, namespaces, rules, errors, warnings } = compileRules(o, print, progress);
    // The generated config must pass Envoy's checks too.
    const callers = callersOf(model, namespaces);
    const memo = new TranslateMemo(); // one translator memory for every caller checked
    let generatedErrors = 0;
    callers.forEach(({ kind, namespace, ...topology }, i) => {
      const status = `translating for ${callers.length} proxies: ${i}/${callers.length}`;
      progress.update(status);
      const proxy: Proxy = { id: `validate~${kind}~${namespace}`, kind, namespace, labels: {}, ...topology };
      const res = translate(model, proxy, memo);
      for (const t of TYPE_ORDER) {
        const list = res[t];
        for (let k = 0; k < list.length; k++) {
          const r = list[k]!;
          if ((k & 1023) === 0) progress.update(`${status} (checking ${t.split('.').pop()} ${k}/${list.length})`);
          for (const v of checks.check(r)) {
            generatedErrors++;
            print(`error: generated ${t.split('.').pop()} ${String(r.name ?? r.cluster_name)} for ${kind} in ${namespace}: ${v.path}: ${v.message}`);
          }
        }
      }
    });
    const total = errors + generatedErrors;
    print(`${rules} rules valid, ${total} errors, ${warnings} warnings`);
    return total ? 1 : 0;
  } finally {
    progress.clear();
  }
}
