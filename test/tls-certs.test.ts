import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createCA, issueServingCert } from '../control-plane/tls/certs.ts';

function get(port: number, ca: string, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, ca, path: '/', ...(servername ? { servername } : {}) }, (r) => {
        let body = '';
        r.on('data', (d) => (body += d));
        r.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('certificate authority', () => {
  it('issues a serving cert that a client trusting only the CA accepts, and another CA does not', async () => {
    const ca = await createCA('meshpilot-test-ca');
    const other = await createCA('someone-else');
    const serving = await issueServingCert(ca, { dnsNames: ['webhook.meshpilot.svc'], ipAddresses: ['127.0.0.1'] });
    const server = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (_q, r) => r.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      expect(await get(port, ca.certPem)).toBe('ok');
      expect(await get(port, ca.certPem, 'webhook.meshpilot.svc')).toBe('ok');
      await expect(get(port, other.certPem)).rejects.toThrow();
      await expect(get(port, ca.certPem, 'elsewhere.example')).rejects.toThrow(/altnames|Hostname/i);
    } finally {
      server.close();
    }
  });
});
