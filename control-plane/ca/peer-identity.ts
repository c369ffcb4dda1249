// The identity a TLS peer proved with its client certificate. grpc-js 1.14 hands a server handler
// `call.getAuthContext().sslPeerCertificate` (server-interceptors.js getAuthContext), and only when
// the socket is `authorized`: the certificate chained to the trust bundle given to the TLS server
// (ca/tls-credentials.ts). Unverified certificates never show up here.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId, type Identity } from './identity.ts';

interface HasAuthContext {
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | undefined;
}

/** The URI SANs of a certificate (node prints them as `URI:...`, comma separated, values escaped if odd). */
function uriSans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
}

/**
 * The SPIFFE identity of a verified client certificate that has exactly one URI SAN in our trust
 * domain and is within its validity now (a connection can outlive its certificate).
 */
export function peerIdentity(call: HasAuthContext, trustDomain: string, now = Date.now()): Identity | undefined {
  const raw = call.getAuthContext?.()?.sslPeerCertificate?.raw;
  if (!raw) return undefined;
  const cert = new X509Certificate(raw);
  if (Date.parse(cert.validTo) <= now || Date.parse(cert.validFrom) > now) return undefined;
  const uris = uriSans(cert);
  if (uris.length !== 1) return undefined;
  const id = parseSpiffeId(uris[0]!);
  return id && id.trustDomain === trustDomain ? id : undefined;
}
