// What state-of-the-world and delta streams share: who the proxy is, and how its per-type state
// is reported.
import { proxyFromNode, type NodeInfo, type Proxy } from '../translate/proxy.ts';
import { structToJson } from './struct.ts';

export interface RequestNode { id?: string; metadata?: unknown; locality?: NodeInfo['locality']; user_agent_name?: string }

/** What one proxy has of one type, for status pages and tests. */
export interface TypeStatus {
  subscribed: string[] | '*';
  sentVersion?: string;
  sentNonce?: string;
  ackedVersion?: string;
  nack?: { nonce: string; version: string; message: string };
  /** The model generation this type was last brought up to date with (SnapshotCache.generation). */
  generation?: number;
}

/**
 * What streams report as it happens, for metrics (control-plane/metrics.ts). Optional, and cheap
 * by contract: it is called on the push and ACK paths.
 */
export interface XdsObserver {
  /** A response of `type` was written; `onChange` when a config change caused it (not a new subscription). */
  sent(stream: object, type: string, onChange: boolean): void;
  acked(stream: object, type: string): void;
  /** Once per rejected nonce. */
  nacked(stream: object, type: string): void;
}

export interface TypeStateCommon {
  wildcard: boolean;
  names: ReadonlySet<string>;
  sentVersion?: string;
  sentNonce?: string;
  ackedVersion?: string;
  nack?: { nonce: string; version: string; message: string };
  generation?: number;
}

/** The proxy named by the first request of a stream (which must carry the node). */
export function proxyFromRequest(node: RequestNode | undefined): Proxy {
  if (!node?.id) throw new Error('the first request on a stream must carry node.id');
  return proxyFromNode({
    id: node.id,
    metadata: structToJson(node.metadata),
    ...(node.locality ? { locality: node.locality } : {}),
    ...(node.user_agent_name ? { user_agent_name: node.user_agent_name } : {}),
  });
}

export function typeStatus(types: Map<string, TypeStateCommon>): Record<string, TypeStatus> {
  const out: Record<string, TypeStatus> = {};
  for (const [type, s] of types) {
    out[type] = {
      subscribed: s.wildcard ? '*' : [...s.names].sort(),
      ...(s.sentVersion ? { sentVersion: s.sentVersion, sentNonce: s.sentNonce } : {}),
      ...(s.ackedVersion ? { ackedVersion: s.ackedVersion } : {}),
      ...(s.nack ? { nack: s.nack } : {}),
      ...(s.generation !== undefined ? { generation: s.generation } : {}),
    };
  }
  return out;
}
