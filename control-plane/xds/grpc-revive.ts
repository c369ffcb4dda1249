// Workaround for @grpc/grpc-js-xds (seen in 1.14.1). A Listener or Cluster left out of an LDS/CDS
// answer is reported "does not exist" to its watchers, but the client keeps its copy of it
// (xds-client.js, AdsCallState.handleResponseMessage only sets meta.clientStatus). When the resource
// comes back, AdsResponseParser.parseResource compares it with that copy (`resourcesEqual`, a deep
// compare of the decoded value; the version is not looked at) and, if equal, returns without
// telling any watcher: the channel stays on "does not exist" for good. The copy also outlives the
// ADS stream, so a client that reconnects (say, after a meshpilot restart) may hold any resource
// that way without this process knowing.
//
// So before an answer with such a resource, the stream sends the same answer with that resource in
// a second form that works the same (a Listener with a marker in its metadata; a Cluster naming
// its EDS resource the other way, '' or its own name, which the client resolves to the same name).
// The client sees a change and resolves again, then the answer itself brings back the usual form,
// so between answers a client only ever holds the usual form and the second form always differs
// from it. Which resources: those this stream sent before and left out of its last answer, and,
// when the client came with a version of this type (it held some from an earlier stream), every
// resource not yet sent on this stream. The translator's output is untouched.
import { checkAndEncode } from '../envoy/check.ts';
import type { Json } from '../json.ts';
import { CLUSTER, LISTENER } from '../translate/type-urls.ts';
import type { Resource } from '../translate/translate.ts';
import { encodedResource, setVersion, type EncodedResource } from './encoded.ts';
import type { SotwAnswer } from './sotw-answer.ts';
import { resourcesField } from './wire.ts';

/** One gRPC stream's Listeners or Clusters: which names it has sent, for `prelude`. */
export class GrpcRevivals {
  private sentNames = new Set<string>();
  /** Prelude nonces are the answer's with a suffix counted here: unique on the stream, which is all nonces need. */
  private preludeCount = 0;

  /** `heldBefore`: the client named a version of this type on its first request. */
  constructor(private readonly heldBefore: boolean) {}

  /**
   * The answer to send just before `answer` (whatever else the stream would do with it), or
   * undefined when no resource in it may be held by the client as "does not exist". `last` is the
   * answer this stream sent before (complete: LDS and CDS answers always are).
   */
  prelude(answer: SotwAnswer, last: SotwAnswer | undefined, subscribed: ReadonlySet<string>): SotwAnswer | undefined {
    // A name the client unsubscribed from is gone from its cache too.
    for (const name of this.sentNames) if (!subscribed.has(name)) this.sentNames.delete(name);
    const inLast = new Set(last?.resources.map((r) => r.name));
    let changed = false;
    const resources = answer.resources.map((r) => {
      const stale = !inLast.has(r.name) && (this.heldBefore || this.sentNames.has(r.name));
      const other = stale ? secondForm(r) : undefined;
      if (other) changed = true;
      return other ?? r;
    });
    for (const r of answer.resources) this.sentNames.add(r.name);
    if (!changed) return undefined;
    return { version: setVersion(resources), resources, body: () => resourcesField(resources), nonce: `${answer.nonce}.p${++this.preludeCount}` };
  }
}

const secondForms = new WeakMap<EncodedResource, EncodedResource | null>();

/** The resource in a form the client treats as different but that routes the same, if it has one. */
function secondForm(r: EncodedResource): EncodedResource | undefined {
  let other = secondForms.get(r);
  if (other === undefined) {
    const json = secondFormJson(r.json);
    const checked = json && checkAndEncode(json);
    other = checked && 'any' in checked ? encodedResource(r.name, json!, checked.any) : null;
    secondForms.set(r, other);
  }
  return other ?? undefined;
}


function secondFormJson(json: Resource): Resource | undefined {
  if (json['@type'] === LISTENER) {
    // The client compares whole Listener messages, metadata included, and ignores metadata.
    const metadata = (json.metadata ?? {}) as Json;
    const filters = (metadata.filter_metadata ?? {}) as Json;
    return { ...json, metadata: { ...metadata, filter_metadata: { ...filters, 'meshpilot.io/resend': {} } } };
  }
  if (json['@type'] === CLUSTER) {
    // The client compares what it derives from a Cluster, not its bytes; for an EDS cluster that
    // includes the EDS resource name as written ('' or a name), while it watches `name || cluster`.
    const eds = json.eds_cluster_config as Json | undefined;
    if (json.type !== 'EDS' || !eds) return undefined;
    const service = (eds.service_name ?? '') as string;
    if (service !== '' && service !== json.name) return undefined;
    return { ...json, eds_cluster_config: { ...eds, service_name: service === '' ? json.name : '' } };
  }
  return undefined;
}
