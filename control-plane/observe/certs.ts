// GET /debug/certs: the CA's roots (which one signs, until when the others are kept) and the most
// recent certificate issued per identity. Serials and dates only, never key material.
import type { Authority } from '../ca/authority.ts';

export function certsReport(ca: Authority) {
  const now = Date.now();
  const left = (d: Date) => Math.round((d.getTime() - now) / 1000);
  return {
    mode: ca.mode,
    trustDomain: ca.trustDomain,
    trustBundle: ca.trustBundlePath,
    maxWorkloadCertTtlSeconds: ca.maxWorkloadTtlMs / 1000,
    signingCert: { subject: ca.signingCert.subject, serial: ca.signingCert.serialNumber, notAfter: ca.signingCert.notAfter.toISOString(), expiresInSeconds: left(ca.signingCert.notAfter) },
    roots: ca.rootInfo().map((r) => ({
      subject: r.subject,
      serial: r.serial,
      signing: r.signing,
      notBefore: r.notBefore.toISOString(),
      notAfter: r.notAfter.toISOString(),
      expiresInSeconds: left(r.notAfter),
      ...(r.keepUntil ? { keepUntil: r.keepUntil.toISOString() } : {}),
      ...(r.activateAt ? { staged: true, activateAt: r.activateAt.toISOString() } : {}),
    })),
    issued: ca.issued().map((c) => ({
      identity: c.identity,
      serial: c.serial,
      notBefore: c.notBefore.toISOString(),
      notAfter: c.notAfter.toISOString(),
      expired: c.notAfter.getTime() <= now,
      root: c.root,
    })),
  };
}
