// The credentials every source (Kubernetes Secrets of the config cluster, a credentials directory)
// holds now, as checked and encoded SDS Secret resources per namespace. A credential that cannot
// be used (unparsable PEM, key not matching its certificate, a resource Envoy's schema refuses) is
// left out and reported by namespace/name in logs and /readyz details; the others keep working.
// Changes are told to listeners with the namespaces they touched, so only Secrets are pushed.
import { checkAndEncode } from '../envoy/check.ts';
import type { Logger } from '../log.ts';
import { compareText } from '../model/compare.ts';
import type { ComponentHealth, HealthProvider } from '../observe/health.ts';
import { encodedResource, type EncodedResource } from '../xds/encoded.ts';
import { CA_SUFFIX, credentialResources, SECRET_PREFIX, type CredentialInput } from './secret-resources.ts';

type Built = { resources: EncodedResource[] } | { error: string };

const NONE: ReadonlyMap<string, EncodedResource> = new Map();

/** A credential's identity and content; kept per input object (sources reuse unchanged ones). */
const keys = new WeakMap<CredentialInput, string>();
function keyOf(c: CredentialInput): string {
  let k = keys.get(c);
  if (k === undefined) keys.set(c, (k = `${c.namespace}/${c.name}\n${JSON.stringify(c.data)}`));
  return k;
}

export class CredentialStore implements HealthProvider {
  private readonly sources = new Map<string, readonly CredentialInput[]>();
  private byNamespace = new Map<string, Map<string, EncodedResource>>();
  /** `namespace/name` -> why it is left out. */
  private problems = new Map<string, string>();
  /** Per credential content, what it built: an unchanged Secret is neither parsed nor encoded again. */
  private built = new Map<string, Built>();
  private readonly listeners = new Set<(namespaces: ReadonlySet<string>) => void>();

  constructor(private readonly log: Logger) {}

  onChange(listener: (namespaces: ReadonlySet<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The Secret resources of a namespace, by resource name. */
  secretsIn(namespace: string): ReadonlyMap<string, EncodedResource> {
    return this.byNamespace.get(namespace) ?? NONE;
  }

  /**
   * Replaces what `source` holds (e.g. `kubernetes`, `files`); listeners are told what changed once
   * it is applied. Checking a credential costs a few milliseconds (decoding its private key), so
   * new contents are checked in slices of about 10 ms between turns of the event loop, and a
   * cluster with a thousand TLS Secrets does not stall xDS while they load; unchanged contents are
   * not checked again.
   */
  set(source: string, inputs: readonly CredentialInput[]): void {
    this.sources.set(source, inputs);
    for (const c of inputs) {
      const key = keyOf(c);
      if (!this.built.has(key) && !this.fresh.has(key)) this.queue.push([key, c]);
    }
    if (this.checking) return;
    this.checking = true;
    setImmediate(() => this.checkSlice());
  }

  private checking = false;
  /** Contents to check, and those checked since the last rebuild, by key. */
  private queue: Array<[string, CredentialInput]> = [];
  private fresh = new Map<string, Built>();

  private checkSlice(): void {
    const deadline = performance.now() + 10;
    while (this.queue.length) {
      const [key, c] = this.queue.pop()!;
      if (!this.fresh.has(key)) this.fresh.set(key, this.build(c));
      if (performance.now() > deadline) {
        setImmediate(() => this.checkSlice());
        return;
      }
    }
    this.checking = false;
    this.rebuild();
  }

  private rebuild(): void {
    const all = [...this.sources.values()].flat().sort((a, b) => compareText(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));
    const next = new Map<string, Map<string, EncodedResource>>();
    const problems = new Map<string, string>();
    const built = new Map<string, Built>();
    // A `<name>-cacert` resource from `<name>`'s own CA comes before one from a Secret called so.
    const later: Array<[string, EncodedResource]> = [];
    for (const c of all) {
      const where = `${c.namespace}/${c.name}`;
      const key = keyOf(c);
      const b = built.get(key) ?? this.built.get(key) ?? this.fresh.get(key) ?? this.build(c);
      built.set(key, b);
      if ('error' in b) {
        problems.set(where, b.error);
        continue;
      }
      let ns = next.get(c.namespace);
      if (!ns) next.set(c.namespace, (ns = new Map()));
      for (const r of b.resources) {
        if (r.name === `${SECRET_PREFIX}${c.name}` && c.name.endsWith(CA_SUFFIX) && 'validation_context' in r.json) later.push([c.namespace, r]);
        else if (!ns.has(r.name)) ns.set(r.name, r);
      }
    }
    for (const [namespace, r] of later) {
      const ns = next.get(namespace)!;
      if (!ns.has(r.name)) ns.set(r.name, r);
    }
    this.built = built;
    this.fresh = new Map();
    this.report(problems);
    const changed = new Set<string>();
    for (const namespace of new Set([...next.keys(), ...this.byNamespace.keys()])) {
      const a = this.byNamespace.get(namespace) ?? NONE;
      const b = next.get(namespace) ?? NONE;
      if (a.size !== b.size || [...b].some(([name, r]) => a.get(name)?.hash !== r.hash)) changed.add(namespace);
    }
    this.byNamespace = next;
    if (changed.size) for (const l of [...this.listeners]) l(changed);
  }

  private build(c: CredentialInput): Built {
    const out = credentialResources(c);
    if ('error' in out) return out;
    const resources: EncodedResource[] = [];
    for (const json of out.resources) {
      const checked = checkAndEncode(json);
      // Violations name fields, never values, so they may be logged.
      if ('violations' in checked) return { error: `${String(json.name)} fails Envoy's schema: ${checked.violations.map((v) => `${v.path}: ${v.message}`).join('; ')}` };
      resources.push(encodedResource(String(json.name), json, checked.any));
    }
    return { resources };
  }

  /** Logs what newly fails and what recovered (names only: a credential's data is never logged). */
  private report(problems: Map<string, string>): void {
    for (const [where, error] of problems) {
      if (this.problems.get(where) !== error) this.log.warn({ credential: where, error }, 'TLS credential left out');
    }
    for (const where of this.problems.keys()) {
      if (!problems.has(where)) this.log.info({ credential: where }, 'TLS credential usable again (or gone)');
    }
    this.problems = problems;
  }

  /** One component per credential left out: served without it, so ready but not healthy. */
  health(): ComponentHealth[] {
    return [...this.problems].map(([where, error]) => ({ name: `credential/${where}`, ready: true, healthy: false, detail: `left out: ${error}` }));
  }

  /** How many Secret resources are served, for the log line on change. */
  get size(): number {
    let n = 0;
    for (const ns of this.byNamespace.values()) n += ns.size;
    return n;
  }
}
