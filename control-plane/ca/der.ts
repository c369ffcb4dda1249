// Just enough DER for the CA's hot path: walk the elements of a CSR (csr.ts) and build a workload
// certificate's fixed shape (leaf-cert.ts). Reads are bounds-checked and refuse indefinite or
// over-long lengths; a malformed request is an error, never a read past the buffer.

export interface Tlv {
  tag: number;
  /** The whole element, header included. */
  full: Buffer;
  /** Its contents. */
  body: Buffer;
}

function readTlv(buf: Buffer, off: number): Tlv {
  if (off + 2 > buf.length) throw new Error('DER: truncated header');
  const tag = buf[off]!;
  let len = buf[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || start + n > buf.length) throw new Error('DER: bad length');
    len = buf.readUIntBE(start, n);
    start += n;
  }
  if (start + len > buf.length) throw new Error('DER: truncated element');
  return { tag, full: buf.subarray(off, start + len), body: buf.subarray(start, start + len) };
}

/** The elements inside a constructed element's body. */
export function children(body: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let off = 0; off < body.length; ) {
    const t = readTlv(body, off);
    out.push(t);
    off += t.full.length;
  }
  return out;
}

/** The one element that makes up `der`. */
export function top(der: Buffer): Tlv {
  const t = readTlv(der, 0);
  if (t.full.length !== der.length) throw new Error('DER: trailing bytes');
  return t;
}

function header(tag: number, len: number): Buffer {
  if (len < 0x80) return Buffer.from([tag, len]);
  if (len < 0x100) return Buffer.from([tag, 0x81, len]);
  if (len < 0x10000) return Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  return Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
}

export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([header(tag, body.length), body]);
}

export const seq = (...parts: Buffer[]) => tlv(0x30, ...parts);

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5); whole seconds. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-12-06T20:23:00.000Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'latin1')) : tlv(0x18, Buffer.from(digits, 'latin1'));
}

export function pem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
