// State-of-the-world answers: computed once per (group snapshot, type, subscription) and shared by
// every stream that gets them, carried over from the group's previous snapshot when none of their
// names changed, and cut down to what changed since a version a stream names.
import type { ResourceType } from '../translate/type-urls.ts';
import { setVersion, type EncodedResource, type Snapshot } from './encoded.ts';
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

/** What a stream asks for of one type. */
export interface SotwQuery {
  wildcard: boolean;
  /** The subscribed names, sorted (ignored for a wildcard). */
  names: readonly string[];
  /** The names joined: the key answers are kept under (one string per subscription, see subscriptions.ts). */
  namesKey: string;
  /** The names as a set, if the caller has one. */
  nameSet?: ReadonlySet<string>;
  /** The version the stream has: only resources that differ from it go in the body. */
  since?: string;
  /** The answer the stream last got. */
  held?: SotwAnswer;
}

/** A group's snapshot and the one it replaced, with the names whose content differs per type. */
export interface Lineage {
  before: Snapshot;
  changed: Record<ResourceType, ReadonlySet<string>>;
}

interface FullAnswer extends SotwAnswer {
  since: Map<string, SotwAnswer>;
}

// Not kept: the encoded response (`wire`) holds these bytes already, and the body is needed again
// only for a rare forced resend.
function lazyBody(resources: readonly EncodedResource[]): () => Buffer {
  return () => resourcesField(resources);
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

export class SotwAnswers {
  // Keyed by snapshot, then type, then the subscription string (one string per stream state, so
  // V8 hashes it once), then the version a stream has for "what changed since" answers.
  private answers = new WeakMap<Snapshot, Map<string, Map<string, FullAnswer>>>();
  /** Answers by version, so a push can send only what changed since a stream's last version. */
  private byVersion = new Map<string, SotwAnswer>();
  private previousByVersion = new Map<string, SotwAnswer>();
  /** Numbers this cache's answer nonces: unique per cache is enough (a stream talks to one). */
  private answerCounter = 0;

  /** `lineageOf`: the snapshot a group's snapshot replaced, and what changed (SnapshotCache). */
  constructor(private readonly lineageOf: (snap: Snapshot) => Lineage | undefined) {}

  /** A new model generation: versions of the last two generations are enough to answer "what changed since". */
  nextGeneration(): void {
    this.previousByVersion = this.byVersion;
    this.byVersion = new Map();
  }

  /**
   * The answer for a subscription (`names` sorted, or wildcard), computed once per snapshot and
   * subscription. With `since` (the version a stream has), only the resources that differ from it
   * are in the body: routes and endpoints may be sent per resource in SotW. `held` is the answer
   * the stream last got: what it has is known from it even when no recent generation gave that
   * version (a type left untouched by several changes is not asked again, see AdsStream.push).
   */
  answer(snap: Snapshot, type: ResourceType, q: SotwQuery): SotwAnswer {
    const { wildcard, names, since, held } = q;
    let perSnap = this.answers.get(snap);
    if (!perSnap) this.answers.set(snap, (perSnap = new Map()));
    let perType = perSnap.get(type);
    if (!perType) perSnap.set(type, (perType = new Map()));
    const key = wildcard ? '*' : q.namesKey;
    let full = perType.get(key);
    if (!full) {
      // The group's previous snapshot answered this subscription already: if none of its names
      // changed, that answer (version, nonce and bytes) stands, and the stream gets no push.
      const lineage = this.lineageOf(snap);
      const changed = lineage?.changed[type];
      const old = lineage && this.answers.get(lineage.before)?.get(type)?.get(key);
      if (old && changed && untouched(changed, wildcard, q.nameSet ?? new Set(names))) {
        full = old;
      } else {
        const all = snap[type];
        const resources: EncodedResource[] = [];
        if (wildcard) resources.push(...all.values());
        else for (const n of names) { const r = all.get(n); if (r) resources.push(r); }
        const version = setVersion(resources);
        full = { version, resources, body: lazyBody(resources), nonce: `a${++this.answerCounter}`, since: new Map() };
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
      partial = { version: full.version, resources: changed, body: lazyBody(changed), nonce: `a${++this.answerCounter}`, whole: full };
      full.since.set(since, partial);
    }
    return partial;
  }
}
