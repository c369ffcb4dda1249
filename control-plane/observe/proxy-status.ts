// Sync status of connected proxies, for /debug/proxies and `meshpilot wait` (the meaning of
// Istio's proxy-status): per xDS type, whether the proxy holds the config meshpilot has for it now.
import type { TypeStatus } from '../xds/stream-common.ts';
import type { XdsStream } from '../xds/ads-server.ts';
import { shortType } from './metrics.ts';
import { TYPE_ORDER } from '../translate/type-urls.ts';

/** Types listed in ADS push order: clusters, endpoints, listeners, routes. */
const pushOrder = (url: string) => {
  const i = (TYPE_ORDER as readonly string[]).indexOf(url);
  return i < 0 ? TYPE_ORDER.length : i;
};

/**
 * SYNCED: the latest version for the current config was sent and ACKed.
 * STALE: a version was sent and not ACKed yet, or the config changed and this proxy has not been
 *   brought up to date yet (a push round in progress, or a proxy slow to read).
 * NACKED: the proxy rejected the last version sent (it runs its last ACKed one).
 * NOT_SENT: subscribed, but the current config has nothing of this type for it.
 */
export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT_SENT';

export interface TypeSync {
  typeUrl: string;
  state: SyncState;
  reason?: string;
  subscribed: string[] | '*';
  sentVersion?: string;
  sentNonce?: string;
  ackedVersion?: string;
  /** The rejected version and nonce, and the client's message (kept until a later version is ACKed). */
  nack?: { version: string; nonce: string; message: string };
}

export interface ProxyStatus {
  id: string;
  kind: string;
  protocol: 'sotw' | 'delta';
  namespace: string;
  labels: Record<string, string>;
  locality: { region: string; zone: string; subzone: string };
  connectedSince: string;
  /** The worst state over its types (NACKED > STALE > SYNCED; NOT_SENT counts as synced). */
  state: 'SYNCED' | 'STALE' | 'NACKED';
  types: Record<string, TypeSync>;
}

export function typeSync(typeUrl: string, t: TypeStatus, generation: number): TypeSync {
  const base = {
    typeUrl,
    subscribed: t.subscribed,
    ...(t.sentVersion !== undefined ? { sentVersion: t.sentVersion, sentNonce: t.sentNonce } : {}),
    ...(t.ackedVersion !== undefined ? { ackedVersion: t.ackedVersion } : {}),
    ...(t.nack ? { nack: { version: t.nack.version, nonce: t.nack.nonce, message: t.nack.message } } : {}),
  };
  if (t.nack && t.nack.nonce === t.sentNonce) return { ...base, state: 'NACKED', reason: `rejected version ${t.nack.version}: ${t.nack.message}` };
  if ((t.generation ?? -1) < generation) return { ...base, state: 'STALE', reason: 'the config changed and has not been pushed to this proxy yet' };
  if (t.sentVersion === undefined) return { ...base, state: 'NOT_SENT', reason: 'nothing of this type for this proxy' };
  // A NACK stays recorded until the next ACK: with content-hash versions the resend after it may
  // carry the very version the proxy ACKed before, so equal versions alone do not mean it took it.
  if (t.ackedVersion !== t.sentVersion || t.nack) {
    const why = t.nack ? 'sent after a NACK, not yet ACKed' : t.ackedVersion === undefined ? 'sent, never ACKed on this stream' : 'sent, not yet ACKed';
    return { ...base, state: 'STALE', reason: `version ${t.sentVersion} ${why}` };
  }
  return { ...base, state: 'SYNCED' };
}

export function proxyStatus(s: XdsStream, generation: number): ProxyStatus | undefined {
  const p = s.proxy;
  if (!p) return undefined;
  const types: Record<string, TypeSync> = {};
  const all = Object.entries(s.status()).sort(([a], [b]) => pushOrder(a) - pushOrder(b));
  for (const [url, t] of all) types[shortType(url)] = typeSync(url, t, generation);
  const states = Object.values(types).map((t) => t.state);
  const state = states.includes('NACKED') ? 'NACKED' : states.includes('STALE') ? 'STALE' : 'SYNCED';
  return {
    id: p.id,
    kind: p.kind,
    protocol: s.protocol,
    namespace: p.namespace,
    labels: p.labels,
    locality: p.locality,
    connectedSince: s.connectedAt.toISOString(),
    state,
    types,
  };
}

export function summarize(proxies: readonly ProxyStatus[]): Record<string, number> {
  const out: Record<string, number> = { proxies: proxies.length, SYNCED: 0, STALE: 0, NACKED: 0 };
  for (const p of proxies) out[p.state]++;
  return out;
}

/**
 * A label selector as kubectl takes it: `app=reviews,version!=v1,canary` (=, ==, != and
 * existence; `!key` for absence). Throws on anything else.
 */
export function parseSelector(text: string): (labels: Record<string, string>) => boolean {
  const terms = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((t): ((l: Record<string, string>) => boolean) => {
      const m = /^(!?)([A-Za-z0-9._/-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*))?$/.exec(t);
      if (!m) throw new Error(`bad label selector term "${t}" (expected key=value, key!=value, key or !key)`);
      const [, not, key, op, value] = m;
      if (not && op) throw new Error(`bad label selector term "${t}"`);
      if (!op) return not ? (l) => !(key in l) : (l) => key in l;
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    });
  return (labels) => terms.every((f) => f(labels));
}
