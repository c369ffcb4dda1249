// A JWT issuer for tests: a fresh ES256 key pair, its public JSON Web Key Set (for a
// RequestAuthentication's inline `jwks`), and signed tokens. node:crypto only.
import crypto from 'node:crypto';

export interface TestIssuer {
  issuer: string;
  /** `{"keys":[...]}` with the public key. */
  jwks: string;
  /** A token signed with the issuer's key; `iss` is filled in, `exp` one hour ahead unless given. */
  sign(claims: Record<string, unknown>): string;
}

const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url');

export function testIssuer(issuer: string, kid = 'k1'): TestIssuer {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
  return {
    issuer,
    jwks: JSON.stringify({ keys: [jwk] }),
    sign(claims) {
      const head = b64(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid }));
      const body = b64(JSON.stringify({ iss: issuer, exp: Math.floor(Date.now() / 1000) + 3600, ...claims }));
      const sig = crypto.sign('sha256', Buffer.from(`${head}.${body}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${head}.${body}.${b64(sig)}`;
    },
  };
}
