// The two first clients of a freshly started `meshpilot serve` (bench/serve-startup.ts), each until
// it holds everything it asked for, which is when the control plane's cache is warm as a user sees it:
//  - an Envoy sidecar over delta ADS, as Envoy asks: wildcard CDS and LDS, then RDS for the route
//    configs its listeners name and EDS for its EDS clusters; every response ACKed with its nonce.
//  - a proxyless gRPC client over SotW ADS, as grpc-js asks: LDS for the host:port names it dials,
//    then RDS, CDS and EDS by the names those give; ACKed with version and nonce.
// Responses are read by hand (bench/wire.ts), only as far as needed to find the next names.
import { H2Channel } from './h2-grpc.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, claMarker, clusterNameOf, decodeResponse, eachField, encodeRequest, listenerRouteName, message, node as grpcNode, routeClusters, struct } from './wire.ts';

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

export interface ClientResult {
  /** performance.now() when the client held every resource it asked for. */
  doneAt: number;
  /** Resources held per type (short names: lds, cds, rds, eds). */
  counts: Record<string, number>;
  /** Bytes of response messages received. */
  bytes: number;
}

/** Where a client stands, for a timeout message. */
export interface Progress {
  describe(): string;
}

const short: Record<string, string> = { [LISTENER]: 'lds', [CLUSTER]: 'cds', [ROUTE_CONFIG]: 'rds', [ENDPOINTS]: 'eds' };

const text = (b: Uint8Array, s: number, e: number) => Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8');

/** A sidecar's Listener -> the route config names of its HttpConnectionManagers (filter chains and the default chain). */
function sidecarRouteNames(listener: Uint8Array, out: Set<string>): void {
  eachField(listener, 0, listener.length, (f, w, s, e) => {
    if ((f !== 3 && f !== 25) || w !== 2) return; // filter_chains, default_filter_chain
    eachField(listener, s, e, (cf, cw, cs, ce) => {
      if (cf !== 3 || cw !== 2) return; // FilterChain.filters
      eachField(listener, cs, ce, (ff, fw, fs, fe) => {
        if (ff !== 4 || fw !== 2) return; // Filter.typed_config (Any)
        let typeUrl = '';
        let value: [number, number] | undefined;
        eachField(listener, fs, fe, (af, aw, as, ae) => {
          if (af === 1 && aw === 2) typeUrl = text(listener, as, ae);
          if (af === 2 && aw === 2) value = [as, ae];
        });
        if (!value || !typeUrl.endsWith('.HttpConnectionManager')) return;
        // HttpConnectionManager.rds (3) -> Rds.route_config_name (2)
        eachField(listener, value[0], value[1], (hf, hw, hs, he) => {
          if (hf !== 3 || hw !== 2) return;
          eachField(listener, hs, he, (rf, rw, rs, re) => {
            if (rf === 2 && rw === 2) out.add(text(listener, rs, re));
          });
        });
      });
    });
  });
}

/** A Cluster -> the name EDS knows it by, if it is an EDS cluster (eds_cluster_config.service_name, else its name). */
function edsName(cluster: Uint8Array): string | undefined {
  let name = '';
  let eds: string | undefined;
  eachField(cluster, 0, cluster.length, (f, w, s, e) => {
    if (f === 1 && w === 2) name = text(cluster, s, e);
    if (f === 3 && w === 2) {
      eds = '';
      eachField(cluster, s, e, (ef, ew, es, ee) => {
        if (ef === 2 && ew === 2) eds = text(cluster, es, ee);
      });
    }
  });
  return eds === undefined ? undefined : eds || name;
}

/** envoy.config.core.v3.Node as an Envoy sidecar sends it (user_agent_name envoy, so not taken for gRPC). */
function envoyNode(id: string, metadata: Record<string, unknown>): Buffer {
  return message([[1, id], [3, struct(metadata)], [6, 'envoy']]);
}

interface DeltaResponse { typeUrl: string; nonce: string; resources: Array<{ name: string; value: Uint8Array }>; removed: string[] }

function decodeDelta(buf: Uint8Array): DeltaResponse {
  const r: DeltaResponse = { typeUrl: '', nonce: '', resources: [], removed: [] };
  eachField(buf, 0, buf.length, (f, w, s, e) => {
    if (w !== 2) return;
    if (f === 4) r.typeUrl = text(buf, s, e);
    else if (f === 5) r.nonce = text(buf, s, e);
    else if (f === 6) r.removed.push(text(buf, s, e));
    else if (f === 2) {
      // Resource: name (3), resource (2: Any, whose value is field 2)
      let name = '';
      let value: Uint8Array | undefined;
      eachField(buf, s, e, (rf, rw, rs, re) => {
        if (rf === 3 && rw === 2) name = text(buf, rs, re);
        if (rf === 2 && rw === 2) {
          eachField(buf, rs, re, (af, aw, as, ae) => {
            if (af === 2 && aw === 2) value = buf.subarray(as, ae);
          });
        }
      });
      r.resources.push({ name, value: value ?? new Uint8Array() });
    }
  });
  return r;
}

/** DeltaDiscoveryRequest: node (1, first request only), type_url (2), subscribe (3), response_nonce (6). */
function deltaRequest(typeUrl: string, subscribe: string[], nonce: string, node?: Buffer): Buffer {
  const fields: Array<[number, Uint8Array | string]> = [];
  if (node) fields.push([1, node]);
  fields.push([2, typeUrl]);
  for (const n of subscribe) fields.push([3, n]);
  if (nonce) fields.push([6, nonce]);
  return message(fields);
}

/** Tracks what a client asked for per type and what it holds; complete when every asked name is answered. */
class Wants {
  readonly asked = new Map<string, Set<string>>();
  readonly held = new Map<string, Set<string>>();
  /** Types whose first (wildcard) answer has come. */
  readonly answered = new Set<string>();
  bytes = 0;

  constructor(private readonly types: string[]) {
    for (const t of types) {
      this.asked.set(t, new Set());
      this.held.set(t, new Set());
    }
  }

  /** Names to subscribe that were not asked for yet. */
  newNames(type: string, names: Iterable<string>): string[] {
    const asked = this.asked.get(type)!;
    const out: string[] = [];
    for (const n of names) if (!asked.has(n)) {
      asked.add(n);
      out.push(n);
    }
    return out;
  }

  complete(wildcards: string[]): boolean {
    if (wildcards.some((t) => !this.answered.has(t))) return false;
    for (const t of this.types) {
      const held = this.held.get(t)!;
      for (const n of this.asked.get(t)!) if (!held.has(n)) return false;
    }
    return true;
  }

  counts(): Record<string, number> {
    return Object.fromEntries(this.types.map((t) => [short[t]!, this.held.get(t)!.size]));
  }

  describe(): string {
    return this.types.map((t) => `${short[t]} ${this.held.get(t)!.size}/${this.asked.get(t)!.size || (this.answered.has(t) ? this.held.get(t)!.size : '?')}`).join(', ');
  }
}

/** Runs one client to completion; rejects if the stream ends first. */
function runClient(address: string, start: (ch: H2Channel, done: (r: ClientResult) => void, fail: (e: Error) => void) => Progress): { result: Promise<ClientResult>; progress: Progress; close(): void } {
  const ch = new H2Channel(address);
  let progress!: Progress;
  const result = new Promise<ClientResult>((resolve, reject) => {
    progress = start(ch, resolve, reject);
  });
  return { result, progress, close: () => ch.close() };
}

/** An Envoy sidecar (node type sidecar, namespace default) over delta ADS. */
export function envoySidecar(address: string, ip: string) {
  return runClient(address, (ch, done, fail) => {
    const wants = new Wants([CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG]);
    let finished = false;
    const stream = ch.openStream(`${ADS}/DeltaAggregatedResources`, {
      onMessage(buf) {
        if (finished) return;
        wants.bytes += buf.length;
        const r = decodeDelta(buf);
        stream.write(deltaRequest(r.typeUrl, [], r.nonce)); // ACK
        const held = wants.held.get(r.typeUrl);
        if (!held) return;
        wants.answered.add(r.typeUrl);
        for (const n of r.removed) held.delete(n);
        const routes = new Set<string>();
        const eds = new Set<string>();
        for (const { name, value } of r.resources) {
          held.add(name);
          if (r.typeUrl === LISTENER) sidecarRouteNames(value, routes);
          if (r.typeUrl === CLUSTER) {
            const e = edsName(value);
            if (e !== undefined) eds.add(e);
          }
        }
        // A name asked for that the server removes is answered too (it does not exist).
        for (const n of r.removed) if (wants.asked.get(r.typeUrl)?.has(n)) held.add(n);
        const newEds = wants.newNames(ENDPOINTS, eds);
        if (newEds.length) stream.write(deltaRequest(ENDPOINTS, newEds, ''));
        const newRoutes = wants.newNames(ROUTE_CONFIG, routes);
        if (newRoutes.length) stream.write(deltaRequest(ROUTE_CONFIG, newRoutes, ''));
        if (wants.complete([CLUSTER, LISTENER])) {
          finished = true;
          done({ doneAt: performance.now(), counts: wants.counts(), bytes: wants.bytes });
        }
      },
      onEnd(status, detail) {
        if (!finished) fail(new Error(`sidecar's delta ADS stream ended (grpc-status ${status}: ${detail}) with ${wants.describe()}`));
      },
    });
    const node = envoyNode(`sidecar~${ip}~startup-client.default~default.svc.cluster.local`, { NAMESPACE: 'default', LABELS: { app: 'startup-client' } });
    // Envoy's order: clusters first, then listeners; an empty first subscription is the wildcard.
    stream.write(deltaRequest(CLUSTER, [], '', node));
    stream.write(deltaRequest(LISTENER, [], ''));
    return wants;
  });
}

/** A proxyless gRPC client dialling `listeners` (host:port names) over SotW ADS. */
export function grpcClient(address: string, listeners: string[]) {
  return runClient(address, (ch, done, fail) => {
    const wants = new Wants([LISTENER, ROUTE_CONFIG, CLUSTER, ENDPOINTS]);
    let finished = false;
    let node: Buffer | undefined = grpcNode('startup-grpc-client', { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'startup-grpc-client' } });
    const subscribe = (type: string) => {
      stream.write(encodeRequest({ ...(node ? { node } : {}), version: '', names: [...wants.asked.get(type)!], typeUrl: type, nonce: '' }));
      node = undefined;
    };
    const stream = ch.openStream(`${ADS}/StreamAggregatedResources`, {
      onMessage(buf) {
        if (finished) return;
        wants.bytes += buf.length;
        const r = decodeResponse(buf);
        const held = wants.held.get(r.typeUrl);
        stream.write(encodeRequest({ version: r.version, names: [...(wants.asked.get(r.typeUrl) ?? [])], typeUrl: r.typeUrl, nonce: r.nonce })); // ACK
        if (!held) return;
        const next = new Set<string>();
        for (const value of r.resources) {
          if (r.typeUrl === LISTENER) {
            const l = listenerRouteName(value);
            held.add(l.name);
            if (l.rds) next.add(l.rds);
          } else if (r.typeUrl === ROUTE_CONFIG) {
            const rc = routeClusters(value);
            held.add(rc.name);
            for (const c of rc.clusters) next.add(c);
          } else if (r.typeUrl === CLUSTER) {
            const e = edsName(value);
            held.add(clusterNameOf(value));
            if (e !== undefined) next.add(e);
          } else {
            held.add(claMarker(value).cluster);
          }
        }
        const nextType = r.typeUrl === LISTENER ? ROUTE_CONFIG : r.typeUrl === ROUTE_CONFIG ? CLUSTER : r.typeUrl === CLUSTER ? ENDPOINTS : undefined;
        if (nextType && wants.newNames(nextType, next).length) subscribe(nextType);
        if (wants.complete([])) {
          finished = true;
          done({ doneAt: performance.now(), counts: wants.counts(), bytes: wants.bytes });
        }
      },
      onEnd(status, detail) {
        if (!finished) fail(new Error(`gRPC client's ADS stream ended (grpc-status ${status}: ${detail}) with ${wants.describe()}`));
      },
    });
    wants.newNames(LISTENER, listeners);
    subscribe(LISTENER);
    return wants;
  });
}
