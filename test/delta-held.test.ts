// A delta stream remembers what its client holds as the snapshot it last brought the client in
// line with plus the few names that differ, and after a change looks only at the names that
// changed since that snapshot. Property: through random endpoint and rule changes, subscription
// changes and pushes, a client applying every response holds exactly what the current snapshot
// has of what it wants, and every response carries only what differs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import type { LoadResult } from '../control-plane/config/types.ts';
import { silentLogger } from '../control-plane/log.ts';
import { ModelMemo } from '../control-plane/model/build.ts';
import { compile, type MeshState } from '../control-plane/model/compile.ts';
import { endpointUpdate } from '../control-plane/model/endpoint-update.ts';
import { reuseUnchanged } from '../control-plane/model/reuse.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG } from '../control-plane/translate/type-urls.ts';
import { DeltaStream } from '../control-plane/xds/delta-stream.ts';
import { SnapshotCache } from '../control-plane/xds/snapshot-cache.ts';
import type { PreEncodedResponse } from '../control-plane/xds/wire.ts';

// ---- just enough of the DeltaDiscoveryResponse wire format ----
function fields(buf: Buffer): Array<[number, Buffer | number]> {
  const out: Array<[number, Buffer | number]> = [];
  let i = 0;
  const varint = () => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++]!;
      n += (b & 127) * mul;
      if (b < 128) return n;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const wire = key & 7;
    if (wire === 0) out.push([key >> 3, varint()]);
    else if (wire === 2) {
      const len = varint();
      out.push([key >> 3, buf.subarray(i, i + len)]);
      i += len;
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
}
interface Decoded { type: string; nonce: string; resources: Array<{ name: string; version: string }>; removed: string[] }
function decode(wire: Buffer): Decoded {
  const d: Decoded = { type: '', nonce: '', resources: [], removed: [] };
  for (const [f, v] of fields(wire)) {
    const b = v as Buffer;
    if (f === 4) d.type = b.toString();
    if (f === 5) d.nonce = b.toString();
    if (f === 6) d.removed.push(b.toString());
    if (f === 2) {
      const r = { name: '', version: '' };
      for (const [g, w] of fields(b)) {
        if (g === 3) r.name = (w as Buffer).toString();
        if (g === 1) r.version = (w as Buffer).toString();
      }
      d.resources.push(r);
    }
  }
  return d;
}

// ---- a mesh whose endpoints and weights change ----
const HOSTS = ['a', 'b', 'c'];
const host = (s: string) => `${s}.default.svc.cluster.local`;
const se = (s: string, eps: number[]) =>
  `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: ${s} }\nspec:\n  hosts: [${host(s)}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{ number: 80, name: http, protocol: HTTP }]\n  endpoints:\n` +
  eps.map((e) => `  - { address: 10.0.${HOSTS.indexOf(s)}.${e}, labels: { version: v${1 + (e % 2)} } }\n`).join('');
const dr = (s: string) => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: ${s} }\nspec:\n  host: ${host(s)}\n  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]\n`;
const vs = (s: string, w: number) =>
  `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: ${s} }\nspec:\n  hosts: [${host(s)}]\n  http:\n  - route:\n    - { destination: { host: ${host(s)}, subset: v1 }, weight: ${w} }\n    - { destination: { host: ${host(s)}, subset: v2 }, weight: ${100 - w} }\n`;

class Mesh {
  files: Record<string, string> = {};
  private parsed = new Map<string, { text: string; result: LoadResult }>();
  constructor() {
    for (const s of HOSTS) Object.assign(this.files, { [`se-${s}.yaml`]: se(s, [1, 2]), [`dr-${s}.yaml`]: dr(s), [`vs-${s}.yaml`]: vs(s, 50) });
  }
  load(): LoadResult {
    const parts = Object.keys(this.files).sort().map((name) => {
      let p = this.parsed.get(name);
      if (!p || p.text !== this.files[name]) this.parsed.set(name, (p = { text: this.files[name]!, result: parseConfigText(name, this.files[name]!) }));
      return p.result;
    });
    return { objects: parts.flatMap((p) => p.objects), errors: parts.flatMap((p) => p.errors) };
  }
}

const NODE = { id: 'sidecar~10.9.0.1~p.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } };
const clusterNames = HOSTS.flatMap((s) => ['', 'v1', 'v2'].map((sub) => `outbound|80|${sub}|${host(s)}`));

type Op =
  | { kind: 'endpoints'; svc: string; eps: number[] }
  | { kind: 'weights'; svc: string; w: number }
  | { kind: 'subscribe'; names: string[] }
  | { kind: 'unsubscribe'; names: string[] }
  | { kind: 'push' }
  | { kind: 'reconnect' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('endpoints' as const), svc: fc.constantFrom(...HOSTS), eps: fc.uniqueArray(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('weights' as const), svc: fc.constantFrom(...HOSTS), w: fc.integer({ min: 0, max: 100 }) }),
  fc.record({ kind: fc.constant('subscribe' as const), names: fc.subarray([...clusterNames, 'outbound|80||nosuch.example'], { minLength: 1 }) }),
  fc.record({ kind: fc.constant('unsubscribe' as const), names: fc.subarray(clusterNames, { minLength: 1 }) }),
  fc.constant({ kind: 'push' as const }),
  fc.constant({ kind: 'reconnect' as const }),
);

describe('delta streams after changes', () => {
  it('bring the client in line with the snapshot, sending only what differs', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
        const mesh = new Mesh();
        const memo = new ModelMemo();
        let load = mesh.load();
        let state: MeshState = compile(load, [], memo);
        const cache = new SnapshotCache(silentLogger);
        cache.setModel(state.model);
        // What the client holds, per type, and what it asked for of EDS.
        let held = new Map<string, Map<string, string>>();
        let eds = new Set<string>();
        let stream: DeltaStream;
        const open = (initial: boolean) => {
          stream = new DeltaStream(cache, (r) => {
            const d = decode((r as PreEncodedResponse).wire);
            const h = held.get(d.type) ?? new Map<string, string>();
            held.set(d.type, h);
            for (const x of d.resources) {
              // Only what differs is sent (or a cluster's endpoints, resent for Envoy's warming).
              if (d.type !== ENDPOINTS) expect(h.get(x.name), `${d.type} ${x.name} resent unchanged`).not.toBe(x.version);
              h.set(x.name, x.version);
            }
            for (const n of d.removed) h.delete(n);
            stream.onRequest({ type_url: d.type, response_nonce: d.nonce });
          }, silentLogger);
          const versions = (t: string) => (initial ? Object.fromEntries(held.get(t) ?? []) : {});
          stream.onRequest({ node: NODE as never, type_url: CLUSTER, initial_resource_versions: versions(CLUSTER) });
          stream.onRequest({ type_url: ENDPOINTS, resource_names_subscribe: [...eds], initial_resource_versions: versions(ENDPOINTS) });
          stream.onRequest({ type_url: LISTENER, initial_resource_versions: versions(LISTENER) });
          stream.onRequest({ type_url: ROUTE_CONFIG, resource_names_subscribe: ['80'], initial_resource_versions: versions(ROUTE_CONFIG) });
        };
        eds = new Set(clusterNames.slice(0, 4));
        open(false);
        const check = () => {
          const snap = cache.snapshotFor(stream.proxy!);
          const want = (t: string, names?: Set<string>) => new Map([...snap[t as keyof typeof snap]].filter(([n]) => !names || names.has(n)).map(([n, r]) => [n, r.hash]));
          expect(held.get(CLUSTER)).toEqual(want(CLUSTER));
          expect(held.get(LISTENER)).toEqual(want(LISTENER));
          expect(held.get(ROUTE_CONFIG)).toEqual(want(ROUTE_CONFIG, new Set(['80'])));
          expect(held.get(ENDPOINTS) ?? new Map()).toEqual(want(ENDPOINTS, eds));
        };
        check();
        for (const o of ops) {
          if (o.kind === 'endpoints' || o.kind === 'weights') {
            mesh.files[`${o.kind === 'endpoints' ? 'se' : 'vs'}-${o.svc}.yaml`] = o.kind === 'endpoints' ? se(o.svc, o.eps) : vs(o.svc, o.w);
            const next = mesh.load();
            const update = endpointUpdate(load, next, state, memo);
            if (update) state = update.state;
            else {
              const c = compile(next, state.accepted, memo);
              state = { ...c, model: reuseUnchanged(c.model, state.model) };
            }
            load = next;
            cache.setModel(state.model);
            // Not every change is pushed at once: a stream can be a generation or two behind.
            continue;
          }
          if (o.kind === 'subscribe') {
            for (const n of o.names) eds.add(n);
            stream!.onRequest({ type_url: ENDPOINTS, resource_names_subscribe: o.names });
            // A name that does not exist comes back as removed; the client never held it.
            eds.delete('outbound|80||nosuch.example');
            continue;
          }
          if (o.kind === 'unsubscribe') {
            for (const n of o.names) {
              eds.delete(n);
              held.get(ENDPOINTS)?.delete(n);
            }
            stream!.onRequest({ type_url: ENDPOINTS, resource_names_unsubscribe: o.names });
            continue;
          }
          if (o.kind === 'reconnect') {
            open(true);
            check();
            continue;
          }
          stream!.push();
          check();
        }
        stream!.push();
        check();
      }),
      { numRuns: 60, seed: 20261207 },
    );
  });
});
