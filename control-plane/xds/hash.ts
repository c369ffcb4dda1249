import { createHash } from 'node:crypto';

/** Short, stable content hash used for resource and snapshot versions. */
export function contentHash(...parts: Array<string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}
