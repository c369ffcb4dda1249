// A small mesh CA for agent tests: istio.v1.auth.IstioCertificateService/CreateCertificate over
// TLS on 127.0.0.1 (port 0, or a given port to come back on after stop()). It checks the bearer
// token (each known token stands for one namespace/service account), or accepts a current client
// certificate it issued (renewal), and signs the CSR's SPIFFE ID when it is the caller's.
import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { loadCaService, type CsrRequest, type CsrResponse } from '../../control-plane/agent/ca-client.ts';
import { createCA, issueServingCert, type CertificateAuthority, type KeyAndCert } from '../../control-plane/tls/certs.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface CaRequestRecord {
  spiffeId: string;
  token: string | undefined;
  /** URI SANs of the client certificate presented, if any. */
  clientCertUris: string[] | undefined;
  outcome: 'issued' | grpc.status;
}

export interface TestCaOptions {
  trustDomain?: string;
  /** token -> "ns/sa" */
  tokens: Map<string, string>;
  /** Lifetime cap in seconds (the agent asks for more). */
  maxTtlSeconds: number;
}

export interface TestCa {
  address: string;
  port: number;
  rootPem: string;
  requests: CaRequestRecord[];
  tokens: Map<string, string>;
  /** Stops serving (existing connections are cut). */
  stop(): Promise<void>;
  /** Serves again on the same port, with the same root. */
  restart(): Promise<void>;
}

// The static credentials grpc-js takes from a certificate provider; with a CA provider it asks
// for a client certificate without requiring one (first request: token only; renewal: both).
// Listeners are called after adding returns: grpc-js registers its watcher only after that.
function staticProvider(ca: CertificateAuthority, serving: KeyAndCert): grpc.experimental.CertificateProvider {
  return {
    addCaCertificateListener: (l) => queueMicrotask(() => l({ caCertificate: Buffer.from(ca.certPem) })),
    removeCaCertificateListener: () => {},
    addIdentityCertificateListener: (l) => queueMicrotask(() => l({ certificate: Buffer.from(serving.certPem), privateKey: Buffer.from(serving.keyPem) })),
    removeIdentityCertificateListener: () => {},
  };
}

export async function startTestCa(o: TestCaOptions): Promise<TestCa> {
  const trustDomain = o.trustDomain ?? 'cluster.local';
  const ca = await createCA('meshpilot test mesh CA');
  const serving = await issueServingCert(ca, { ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
  const provider = staticProvider(ca, serving);
  const requests: CaRequestRecord[] = [];

  async function sign(req: CsrRequest, token: string | undefined, peer: X509Certificate | undefined): Promise<CsrResponse> {
    const csr = new x509.Pkcs10CertificateRequest(req.csr);
    if (!(await csr.verify())) throw Object.assign(new Error('CSR signature does not verify'), { code: grpc.status.INVALID_ARGUMENT });
    const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
    const uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
    const record: CaRequestRecord = { spiffeId: uris[0] ?? '', token, clientCertUris: peer ? urisOf(peer) : undefined, outcome: 'issued' };
    requests.push(record);
    const fail = (code: grpc.status, msg: string) => {
      record.outcome = code;
      return Object.assign(new Error(msg), { code });
    };
    // Who the caller is: its token, else a certificate this CA issued that has not expired.
    const byToken = token !== undefined ? o.tokens.get(token) : undefined;
    const byCert = peer && peer.verify(new X509Certificate(ca.certPem).publicKey) && new Date(peer.validTo).getTime() > Date.now()
      ? urisOf(peer)[0] : undefined;
    const caller = byToken ? `spiffe://${trustDomain}/ns/${byToken.replace('/', '/sa/')}` : byCert;
    if (!caller) throw fail(grpc.status.UNAUTHENTICATED, 'no valid token or client certificate');
    if (uris.length !== 1 || uris[0] !== caller) throw fail(grpc.status.PERMISSION_DENIED, `CSR asks for ${uris.join(', ')}, caller is ${caller}`);
    const now = Date.now();
    const ttl = Math.min(Number(req.validity_duration) || o.maxTtlSeconds, o.maxTtlSeconds);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)).map((b, i) => (i === 0 ? b & 0x7f : b))).toString('hex'),
      subject: '',
      issuer: ca.cert.subject,
      // Backdated for clock skew, as real CAs do: the agent must time renewals from notAfter.
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + ttl * 1000),
      publicKey: csr.publicKey,
      signingKey: ca.keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: caller }], true),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      ],
    });
    return { cert_chain: [leaf.toString('pem'), ca.certPem] };
  }

  let server: grpc.Server | undefined;
  let port = 0;
  async function listen(): Promise<void> {
    const s = new grpc.Server();
    s.addService(loadCaService().service, {
      CreateCertificate(call: grpc.ServerUnaryCall<CsrRequest, CsrResponse>, cb: grpc.sendUnaryData<CsrResponse>) {
        const auth = call.metadata.get('authorization')[0];
        const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
        const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
        const peer = raw ? new X509Certificate(raw) : undefined;
        sign(call.request, token, peer).then((r) => cb(null, r), (e: Error & { code?: grpc.status }) => cb({ code: e.code ?? grpc.status.INTERNAL, details: e.message }));
      },
    });
    const creds = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
    port = await new Promise<number>((resolve, reject) => s.bindAsync(`127.0.0.1:${port}`, creds, (err, p) => (err ? reject(err) : resolve(p))));
    server = s;
  }
  await listen();

  return {
    get address() {
      return `127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    rootPem: ca.certPem,
    requests,
    tokens: o.tokens,
    async stop() {
      server?.forceShutdown();
      server = undefined;
    },
    restart: listen,
  };
}

function urisOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}
