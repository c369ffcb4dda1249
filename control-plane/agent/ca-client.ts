// Client of istio.v1.auth.IstioCertificateService/CreateCertificate over TLS. Each request builds
// its own channel: the client certificate it presents (the current one, once there is one) and the
// token (a projected ServiceAccount token rotates on disk) can differ from one request to the next.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
export const CA_PROTO_FILE = 'istio/v1/auth/ca.proto';

export interface CsrRequest {
  csr: string;
  validity_duration: number;
  metadata?: { fields: Record<string, unknown> };
}
export interface CsrResponse {
  cert_chain: string[];
}

type CaClient = grpc.Client & {
  CreateCertificate(req: CsrRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: CsrResponse) => void): grpc.ClientUnaryCall;
};
type CaService = { service: grpc.ServiceDefinition; new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions): CaClient };

let cached: CaService | undefined;

/** The service, loaded once per process (keepCase: field names as in the .proto). Also used by CAs in tests. */
export function loadCaService(): CaService {
  if (cached) return cached;
  const def = protoLoader.loadSync(CA_PROTO_FILE, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_ROOT] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { istio: { v1: { auth: { IstioCertificateService: CaService } } } };
  cached = pkg.istio.v1.auth.IstioCertificateService;
  return cached;
}

export interface CaClientOptions {
  /** host:port */
  address: string;
  /** PEM of the root(s) that signed the CA's serving certificate (a function: read on every request). */
  caRootPem: string | (() => string);
  /** Re-read on every request. */
  tokenFile?: string;
  /** Overrides the name checked against the CA's serving certificate (default: the host). */
  serverName?: string;
  timeoutMs?: number;
}

/** Asks the CA to sign `csr`. `clientCert`: the current chain and key, presented for renewal. */
export async function requestCertificate(
  o: CaClientOptions,
  csr: string,
  validitySeconds: number,
  clientCert?: { chainPem: string; keyPem: string },
): Promise<string[]> {
  const Ctor = loadCaService();
  const creds = grpc.credentials.createSsl(
    Buffer.from(typeof o.caRootPem === 'function' ? o.caRootPem() : o.caRootPem),
    clientCert ? Buffer.from(clientCert.keyPem) : null,
    clientCert ? Buffer.from(clientCert.chainPem) : null,
  );
  const client = new Ctor(o.address, creds, o.serverName ? { 'grpc.ssl_target_name_override': o.serverName } : {});
  const md = new grpc.Metadata();
  if (o.tokenFile) {
    const token = fs.readFileSync(o.tokenFile, 'utf8').trim();
    if (token) md.set('authorization', `Bearer ${token}`);
  }
  try {
    const res = await new Promise<CsrResponse>((resolve, reject) => {
      client.CreateCertificate(
        { csr, validity_duration: validitySeconds },
        md,
        { deadline: Date.now() + (o.timeoutMs ?? 10_000) },
        (err, r) => (err ? reject(err) : resolve(r!)),
      );
    });
    return res.cert_chain;
  } finally {
    client.close();
  }
}
