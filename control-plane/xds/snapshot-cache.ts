// The versioned cache between the translator and the gRPC server. It knows nothing of streams: it
// turns (model, proxy) into checked, encoded resources, once per proxy group and model generation,
// and tells subscribers when the model changed. Each distinct resource is encoded once and the same
// bytes are shared by every group that has it.
import { checkAndEncode } from '../envoy/check.ts';
import type { Logger } from '../log.ts';
import { labelKeysUsed } from '../model/label-keys.ts';
import { rulesBehind } from '../model/origins.ts';
import type { Model, Service } from '../model/types.ts';
import { topologyUse } from '../translate/locality-priority.ts';
import { proxyGroupKey, type Proxy, type TopologyUse } from '../translate/proxy.ts';
import { translateChanges } from '../translate/changes.ts';
import { resourceName, translate, type Resource } from '../translate/translate.ts';
import { TYPE_ORDER, type ResourceType } from '../translate/type-urls.ts';
import { encodedResource, setVersion, type EncodedResource, type Snapshot } from './encoded.ts';
import { resourcesField } from './wire.ts';

/** One state-of-the-world answer, shared by every stream of a group with the same subscription. */
export interface SotwAnswer {
  version: string;
  resources: EncodedResource[];
  /** The `resources` field of a DiscoveryResponse, encoded when needed (xds/wire.ts): most
   * answers are only asked for their version. */
  body: () => Buffer;
  /**
   * The nonce of this answer. Nonces only need to tell a stream's responses apart, so one nonce
   * per answer lets every stream get the very same bytes (`wire`), encoded once.
   */
  nonce: string;
  wire?: Buffer;
  /** For an answer with only what changed: the whole answer it is part of. */
  whole?: SotwAnswer;
}

let answerCounter = 0;

// Not kept: the encoded response (`wire`) holds these bytes already, and the body is needed again
// only for a rare forced resend.
function lazyBody(resources: readonly EncodedResource[]): () => Buffer {
  return () => resourcesField(resources);
}

interface FullAnswer extends SotwAnswer {
  since: Map<string, SotwAnswer>;
}

/**
 * Every endpoint address of the model's services, kept up to date from the services that changed
 * (the model keeps unchanged services as the same objects) instead of rebuilt from every endpoint.
 */
export class EndpointIps {
  private services = new Set<Service>();
  private count = new Map<string, number>();

  has(ip: string): boolean {
    return this.count.has(ip);
  }

  /** Returns whether an address appeared or disappeared. */
  update(services: readonly Service[]): boolean {
    const next = new Set(services);
    const touched = new Map<string, boolean>(); // address -> whether it was there before
    const add = (s: Service, by: number) => {
      for (const e of s.endpoints) {
        const before = this.count.get(e.address) ?? 0;
        if (!touched.has(e.address)) touched.set(e.address, before > 0);
        if (before + by === 0) this.count.delete(e.address);
        else this.count.set(e.address, before + by);
      }
    };
    for (const s of next) if (!this.services.has(s)) add(s, 1);
    for (const s of this.services) if (!next.has(s)) add(s, -1);
    this.services = next;
    for (const [address, was] of touched) if (this.count.has(address) !== was) return true;
    return false;
  }
}

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

/** Whether a subscription is untouched by a set of changed names. */
function untouched(changed: ReadonlySet<string>, wildcard: boolean, names: ReadonlySet<string>): boolean {
  if (changed.size === 0) return true;
  if (wildcard) return false;
  if (changed.size <= names.size) {
    for (const n of changed) if (names.has(n)) return false;
  } else {
    for (const n of names) if (changed.has(n)) return false;
  }
  return true;
}

function sameSet<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

export interface RejectedResource { group: string; type: string; name: string; violations: string[]; rules: string[] }

export class SnapshotCache {
  private model: Model | undefined;
  private groups = new Map<string, Snapshot>();
  private encoded = new Map<string, EncodedResource>();
  private listeners = new Set<() => void>();
  /** Generated resources that failed Envoy's schema check: never sent (a translator bug). */
  rejected: RejectedResource[] = [];

  /** Counts model changes; a stream whose types were brought up to date with an older one is behind. */
  generation = 0;
  /** When the current model was applied (performance.now() ms), for convergence metrics. */
  changedAt = 0;

  constructor(private readonly log: Logger) {}

  get ready(): boolean {
    return this.model !== undefined;
  }

  /** Every endpoint address in the model: a proxy at one of them has an inbound side. */
  private endpointIps = new EndpointIps();
  private labelKeys = new Set<string>();
  private topology: TopologyUse = { locality: false, network: false };

  setModel(model: Model): void {
    this.model = model;
    const ipsChanged = this.endpointIps.update(model.services);
    const labelKeys = labelKeysUsed(model);
    const topology = topologyUse(model);
    if (ipsChanged || !sameSet(labelKeys, this.labelKeys) || topology.locality !== this.topology.locality || topology.network !== this.topology.network) this.keyEpoch++;
    this.labelKeys = labelKeys;
    this.topology = topology;
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
    // Versions of the last two generations are enough to answer "what changed since".
    this.previousByVersion = this.byVersion;
    this.byVersion = new Map();
    this.generation++;
    this.changedAt = performance.now();
    for (const l of this.listeners) l();
  }

  private lastGood = new Map<string, Snapshot>();
  private builtBefore = new Set<string>();
  private previousEncoded = new Map<string, EncodedResource>();

  // Keyed by snapshot, then type, then the subscription string (one string per stream state, so
  // V8 hashes it once), then the version a stream has for "what changed since" answers.
  private answers = new WeakMap<Snapshot, Map<string, Map<string, FullAnswer>>>();
  /** A group's snapshot and the one it replaced, with the names whose content differs per type. */
  private lineage = new WeakMap<Snapshot, { before: Snapshot; changed: Record<ResourceType, ReadonlySet<string>> }>();
  /** Answers by version, so a push can send only what changed since a stream's last version. */
  private byVersion = new Map<string, SotwAnswer>();
  private previousByVersion = new Map<string, SotwAnswer>();

  /**
   * The answer for a subscription (`names` sorted, or wildcard), computed once per snapshot and
   * subscription. With `since` (the version a stream has), only the resources that differ from it
   * are in the body: routes and endpoints may be sent per resource in SotW. `held` is the answer
   * the stream last got: what it has is known from it even when no recent generation gave that
   * version (a type left untouched by several changes is not asked again, see AdsStream.push).
   */
  sotwAnswer(snap: Snapshot, type: ResourceType, wildcard: boolean, names: readonly string[], namesKey: string, since?: string, nameSet?: ReadonlySet<string>, held?: SotwAnswer): SotwAnswer {
    let perSnap = this.answers.get(snap);
    if (!perSnap) this.answers.set(snap, (perSnap = new Map()));
    let perType = perSnap.get(type);
    if (!perType) perSnap.set(type, (perType = new Map()));
    const key = wildcard ? '*' : namesKey;
    let full = perType.get(key);
    if (!full) {
      // The group's previous snapshot answered this subscription already: if none of its names
      // changed, that answer (version, nonce and bytes) stands, and the stream gets no push.
      const lineage = this.lineage.get(snap);
      const changed = lineage?.changed[type];
      const old = lineage && this.answers.get(lineage.before)?.get(type)?.get(key);
      if (old && changed && untouched(changed, wildcard, nameSet ?? new Set(names))) {
        full = old;
      } else {
        const all = snap[type];
        const resources: EncodedResource[] = [];
        if (wildcard) resources.push(...all.values());
        else for (const n of names) { const r = all.get(n); if (r) resources.push(r); }
        const version = setVersion(resources);
        full = { version, resources, body: lazyBody(resources), nonce: `a${++answerCounter}`, since: new Map() };
      }
      perType.set(key, full);
      this.byVersion.set(`${type}|${full.version}`, full);
    }
    if (since === undefined || since === full.version) return full;
    let partial = full.since.get(since);
    if (!partial) {
      // What the stream was last sent (the whole answer, if it got a part), else any answer this
      // process gave with that version recently (a proxy that reconnected names its version).
      const last = held?.whole ?? held;
      const before = last?.version === since ? last : (this.byVersion.get(`${type}|${since}`) ?? this.previousByVersion.get(`${type}|${since}`));
      if (!before) return full;
      const had = new Map(before.resources.map((r) => [r.name, r.hash]));
      const changed = full.resources.filter((r) => had.get(r.name) !== r.hash);
      partial = { version: full.version, resources: changed, body: lazyBody(changed), nonce: `a${++answerCounter}`, whole: full };
      full.since.set(since, partial);
    }
    return partial;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Each proxy's group key, until what keys depend on changes (`keyEpoch`): pushes ask per type. */
  private groupKeys = new WeakMap<Proxy, { epoch: number; key: string }>();
  private keyEpoch = 0;

  groupOf(proxy: Proxy): string {
    const memo = this.groupKeys.get(proxy);
    if (memo && memo.epoch === this.keyEpoch) return memo.key;
    const key = proxyGroupKey(proxy, proxy.ip !== undefined && this.endpointIps.has(proxy.ip), this.labelKeys, this.topology);
    this.groupKeys.set(proxy, { epoch: this.keyEpoch, key });
    return key;
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
  lineageOf(snap: Snapshot): { before: Snapshot; changed: Record<ResourceType, ReadonlySet<string>> } | undefined {
    return this.lineage.get(snap);
  }

  /** The model each snapshot was translated from, and the snapshots with rejected resources. */
  private builtFrom = new WeakMap<Snapshot, Model>();
  private withRejections = new WeakSet<Map<string, EncodedResource>>();

  private build(group: string, proxy: Proxy, model: Model): Snapshot {
    const resources = translate(model, proxy);
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
    const changes = translateChanges(prev, model, proxy);
    if (!changes) return undefined;
    for (const type of TYPE_ORDER) for (const json of changes.set[type]) if (!before[type].has(resourceName(json))) return undefined;
    const snap = {} as Snapshot;
    const changed = {} as Record<ResourceType, Set<string>>;
    for (const type of TYPE_ORDER) {
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
