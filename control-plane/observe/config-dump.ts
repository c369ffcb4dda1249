// /debug/config_dump?proxy=ID: what one connected proxy was sent, per type, decoded from the
// bytes on the wire back to proto3 JSON (like Envoy's config_dump, but from the server's side).
// Private keys of SDS secrets are redacted, as Envoy's own dump does.
import { decodeResource } from '../envoy/check.ts';
import { proxyStatus } from './proxy-status.ts';
import { redactSecret } from '../credentials/secret-resources.ts';
import { SECRET } from '../translate/type-urls.ts';
import type { XdsStream } from '../xds/ads-server.ts';

export interface TypeDump {
  typeUrl: string;
  state: string;
  sentVersion?: string;
  ackedVersion?: string;
  nack?: { version: string; nonce: string; message: string };
  /** Absent when the version came from the proxy itself (SotW reconnect: nothing was resent). */
  resources?: Array<{ name: string; version: string; resource: unknown }>;
  note?: string;
}

export function configDump(stream: XdsStream, generation: number): Record<string, unknown> {
  const status = proxyStatus(stream, generation)!;
  const types: Record<string, TypeDump> = {};
  for (const [short, t] of Object.entries(status.types)) {
    const sent = stream.sent(t.typeUrl);
    types[short] = {
      typeUrl: t.typeUrl,
      state: t.state,
      ...(t.sentVersion !== undefined ? { sentVersion: t.sentVersion } : {}),
      ...(t.ackedVersion !== undefined ? { ackedVersion: t.ackedVersion } : {}),
      ...(t.nack ? { nack: t.nack } : {}),
      ...(t.state === 'NACKED' ? { note: `these are the rejected version's resources; the proxy still runs version ${t.ackedVersion ?? '(none)'}` } : {}),
      ...(sent?.resources
        ? { resources: sent.resources.map((r) => ({ name: r.name, version: r.hash, resource: t.typeUrl === SECRET ? redactSecret(decodeResource(r.any)) : decodeResource(r.any) })) }
        : sent
          ? { note: 'the proxy reconnected already holding this version; it was not sent again on this stream' }
          : {}),
    };
  }
  const { types: _ignored, ...identity } = status;
  return { proxy: identity, types };
}
