// The versioned cache between the translator and the gRPC server. It knows nothing of streams: it
// turns (model, proxy) into checked, encoded resources, once per proxy group (proxy-groups.ts) and
// model generation, and tells subscribers when the model changed. Each distinct resource is encoded
// once and the same bytes are shared by every group that has it. State-of-the-world answers built
// from its snapshots are kept by sotw-answer.ts.
import { checkAndEncode } from '../envoy/check.ts';
import type { Logger } from '../log.ts';
import { rulesBehind } from '../model/origins.ts';
import type { Model } from '../model/types.ts';
import type { Proxy } from '../translate/proxy.ts';
import { translateChanges } from '../translate/changes.ts';
import { TranslateMemo } from '../translate/memo.ts';
import { resourceName, translate, type Resource } from '../translate/translate.ts';
import { TYPE_ORDER, type ResourceType } from '../translate/type-urls.ts';
import { encodedResource, type EncodedResource, type Snapshot } from './encoded.ts';
import { ProxyGroups } from './proxy-groups.ts';
import { SotwAnswers, type Lineage, type SotwAnswer, type SotwQuery } from './sotw-answer.ts';
import { credentialNamespace } from '../credentials/access.ts';
import type { CredentialStore } from '../credentials/credential-store.ts';

/** What the cache calls to build snapshots: the real translator unless a test passes another. */
export interface Translator {
  translate: typeof translate;
  translateChanges: typeof translateChanges;
}

const REAL_TRANSLATOR: Translator = { translate, translateChanges };

/** Names added, removed or changed (by content hash) between two snapshots of a group, per type. */
function changedNames(before: Snapshot, after: Snapshot): Record<ResourceType, ReadonlySet<string>> {
  const out = {} as Record<ResourceType, Set<string>>;
  for (const type of TYPE_ORDER) {
    const a = before[type];
    const b = after[type];
    const changed = new Set<string>();
    let added = 0;
    for (const [name, r] of b) {
      const old = a.get(name);
      if (!old) added++;
      if (old?.hash !== r.hash) changed.add(name);
    }
    if (a.size !== b.size - added) for (const name of a.keys()) if (!b.has(name)) changed.add(name);
    out[type] = changed;
  }
  return out;
}

const NO_SECRETS: ReadonlyMap<string, EncodedResource> = new Map();

export interface RejectedResource { group: string; type: string; name: string; violations: string[]; rules: string[] }

export class SnapshotCache {
  private model: Model | undefined;
  private groups = new Map<string, Snapshot>();
  private encoded = new Map<string, EncodedResource>();
  private listeners = new Set<() => void>();
  private readonly translator: Translator;
  private readonly proxyGroups = new ProxyGroups();
  private readonly answers = new SotwAnswers((snap) => this.lineage.get(snap));
  /** Generated resources that failed Envoy's schema check: never sent (a translator bug). */
  rejected: RejectedResource[] = [];

  /** Counts model changes; a stream whose types were brought up to date with an older one is behind. */
  generation = 0;
  /** When the current model was applied (performance.now() ms), for convergence metrics. */
  changedAt = 0;

  /** The translator's memory, kept for this cache's lifetime (see translate/memo.ts). */
  private readonly memo = new TranslateMemo();

  /** `translator`: the translate functions to call (the real ones unless given). */
  constructor(
    private readonly log: Logger,
    translator: Partial<Translator> = {},
  ) {
    this.translator = { ...REAL_TRANSLATOR, ...translator };
  }

  get ready(): boolean {
    return this.model !== undefined;
  }

  setModel(model: Model): void {
    this.model = model;
    this.proxyGroups.update(model);
    // Keep each group's last snapshot, so a resource failing the check falls back to its last
    // good version. Groups built in neither of the last two generations have no connected proxy
    // (every push asks for its group) and are let go, so this does not grow with pod churn.
    const fallbacks = new Map(this.lastGood);
    for (const [group, snap] of this.groups) fallbacks.set(group, snap);
    for (const group of fallbacks.keys()) if (!this.groups.has(group) && !this.builtBefore.has(group)) fallbacks.delete(group);
    this.builtBefore = new Set(this.groups.keys());
    this.lastGood = fallbacks;
    this.groups = new Map();
    const keep = this.encoded;
    this.encoded = new Map();
    this.previousEncoded = keep;
    this.rejected = [];
    this.answers.nextGeneration();
    this.generation++;
    this.changedAt = performance.now();
    for (const l of this.listeners) l();
  }

  private lastGood = new Map<string, Snapshot>();
  private builtBefore = new Set<string>();
  private previousEncoded = new Map<string, EncodedResource>();

  /** A group's snapshot and the one it replaced, with the names whose content differs per type. */
  private lineage = new WeakMap<Snapshot, Lineage>();

  /** The state-of-the-world answer for a subscription to `type` in `snap` (sotw-answer.ts). */
  sotwAnswer(snap: Snapshot, type: ResourceType, query: SotwQuery): SotwAnswer {
    return this.answers.answer(snap, type, query);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private credentials: CredentialStore | undefined;
  private dropCredentials: (() => void) | undefined;

  /**
   * Serve SDS secrets (credentialName) from `store`. A change there is a new generation without a
   * new model: every stream is pushed, and only its Secret answers can differ.
   */
  useCredentials(store: CredentialStore): void {
    this.dropCredentials?.();
    this.credentials = store;
    this.dropCredentials = store.onChange(() => {
      if (!this.model) return;
      this.generation++;
      this.changedAt = performance.now();
      for (const l of this.listeners) l();
    });
  }

  /** The Secret resources `proxy` may read (credentials/access.ts), by name. */
  secretsFor(proxy: Proxy): ReadonlyMap<string, EncodedResource> {
    const ns = credentialNamespace(proxy);
    return ns === undefined || !this.credentials ? NO_SECRETS : this.credentials.secretsIn(ns);
  }

  groupOf(proxy: Proxy): string {
    return this.proxyGroups.groupOf(proxy);
  }

  snapshotFor(proxy: Proxy): Snapshot {
    if (!this.model) throw new Error('no model yet');
    const key = this.groupOf(proxy);
    let snap = this.groups.get(key);
    if (!snap) {
      const before = this.lastGood.get(key);
      const built = (before && this.buildChanges(key, proxy, this.model, before)) ?? { snap: this.build(key, proxy, this.model), changed: undefined };
      snap = built.snap;
      this.builtFrom.set(snap, this.model);
      this.groups.set(key, snap);
      if (before) {
        this.lineage.set(snap, { before, changed: built.changed ?? changedNames(before, snap) });
        // Only one step back is kept: a chain of every generation would never be let go.
        this.lineage.delete(before);
      }
    }
    return snap;
  }

  /** The group's previous snapshot and the names that changed since, per type (if known). */
  lineageOf(snap: Snapshot): Lineage | undefined {
    return this.lineage.get(snap);
  }

  /** The model each snapshot was translated from, and the snapshots with rejected resources. */
  private builtFrom = new WeakMap<Snapshot, Model>();
  private withRejections = new WeakSet<Map<string, EncodedResource>>();

  private build(group: string, proxy: Proxy, model: Model): Snapshot {
    const resources = this.translator.translate(model, proxy, this.memo);
    const snap = {} as Snapshot;
    for (const type of TYPE_ORDER) {
      const out = new Map<string, EncodedResource>();
      for (const json of resources[type]) this.place(out, json, group, type, model);
      snap[type] = out;
    }
    return snap;
  }

  /** Puts a resource's encoding in `out`, or its last good version if it fails the check. */
  private place(out: Map<string, EncodedResource>, json: Resource, group: string, type: ResourceType, model: Model): void {
    const name = resourceName(json);
    const enc = this.encode(json);
    if (!('violations' in enc)) {
      out.set(name, enc);
      return;
    }
    const rules = rulesBehind(model, name);
    this.rejected.push({ group, type, name, violations: enc.violations, rules });
    this.log.error({ group, type, name, rules, violations: enc.violations }, 'generated resource fails Envoy validation; keeping the last good version');
    this.withRejections.add(out);
    const old = this.lastGood.get(group)?.[type]?.get(name);
    if (old) out.set(name, old);
  }

  /**
   * The group's new snapshot as its previous one with only what the model change altered
   * (translate/changes.ts), and the names that changed; undefined when that does not apply: the
   * change is not local, it adds a name (order would differ from a full translation), or the
   * previous snapshot holds a rejected resource (which must be reported again).
   */
  private buildChanges(group: string, proxy: Proxy, model: Model, before: Snapshot): { snap: Snapshot; changed: Record<ResourceType, ReadonlySet<string>> } | undefined {
    const prev = this.builtFrom.get(before);
    if (!prev || prev === model || TYPE_ORDER.some((t) => this.withRejections.has(before[t]))) return undefined;
    const changes = this.translator.translateChanges(prev, model, proxy, this.memo);
    if (!changes) return undefined;
    for (const type of TYPE_ORDER) for (const json of changes.set[type]) if (!before[type].has(resourceName(json))) return undefined;
    const snap = {} as Snapshot;
    const changed = {} as Record<ResourceType, Set<string>>;
    for (const type of TYPE_ORDER) {
      // A type the change leaves alone keeps the previous snapshot's map (snapshots are never
      // changed once built): an endpoint change does not copy thousands of clusters and listeners.
      if (changes.set[type].length === 0 && changes.removed[type].length === 0 && !changes.whole[type]) {
        snap[type] = before[type];
        changed[type] = new Set();
        continue;
      }
      const out = new Map(before[type]);
      const names = new Set<string>();
      for (const name of changes.removed[type]) if (out.delete(name)) names.add(name);
      const whole = changes.whole[type];
      if (whole) {
        const given = new Set(changes.set[type].map(resourceName));
        for (const name of [...out.keys()]) {
          if (whole(name) && !given.has(name)) {
            out.delete(name);
            names.add(name);
          }
        }
      }
      for (const json of changes.set[type]) {
        const name = resourceName(json);
        const old = out.get(name);
        this.place(out, json, group, type, model);
        if (out.get(name)?.hash !== old?.hash) names.add(name);
      }
      snap[type] = out;
      changed[type] = names;
    }
    return { snap, changed };
  }

  /** Encodings by resource object: memoized translator output skips even the JSON text. */
  private byObject = new WeakMap<object, EncodedResource>();

  private encode(json: Resource): EncodedResource | { violations: string[] } {
    const same = this.byObject.get(json);
    if (same) return same;
    const text = JSON.stringify(json);
    const hit = this.encoded.get(text) ?? this.previousEncoded.get(text);
    if (hit) {
      this.encoded.set(text, hit);
      this.byObject.set(json, hit);
      return hit;
    }
    // One parse for both: the check was half of encoding a changed resource.
    const checked = checkAndEncode(json);
    if ('violations' in checked) return { violations: checked.violations.map((v) => `${v.path}: ${v.message}`) };
    const enc = encodedResource(resourceName(json), json, checked.any);
    this.encoded.set(text, enc);
    this.byObject.set(json, enc);
    return enc;
  }
}
