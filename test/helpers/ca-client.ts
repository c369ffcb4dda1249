// A real grpc-js client of meshpilot's CA (istio.v1.auth.IstioCertificateService) over TLS, trusting
// only the CA's bundle; optionally presenting a client certificate (renewal) and a bearer token.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_INCLUDE_DIRS } from '../../control-plane/envoy/protos.ts';

const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));

type Ctor = new (address: string, creds: grpc.ChannelCredentials) => grpc.Client & {
  CreateCertificate(req: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: { cert_chain: string[] }) => void): void;
};
let ctor: Ctor | undefined;
let adsCtor: (new (address: string, creds: grpc.ChannelCredentials) => grpc.Client & { StreamAggregatedResources(): grpc.ClientDuplexStream<object, object> }) | undefined;

export interface ClientTls {
  /** PEM trust bundle. */
  rootPem: string;
  /** A client certificate chain (PEM, leaf first) and its key. */
  certChainPem?: string;
  keyPem?: string;
}

export function credentials(tls: ClientTls | 'plaintext'): grpc.ChannelCredentials {
  if (tls === 'plaintext') return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(Buffer.from(tls.rootPem), tls.keyPem ? Buffer.from(tls.keyPem) : null, tls.certChainPem ? Buffer.from(tls.certChainPem) : null);
}

export function caClient(address: string, tls: ClientTls | 'plaintext') {
  if (!ctor) {
    const def = protoLoader.loadSync('istio/v1/auth/ca.proto', { includeDirs: [PROTO_ROOT], keepCase: true, longs: String, enums: String, defaults: true });
    ctor = (grpc.loadPackageDefinition(def) as any).istio.v1.auth.IstioCertificateService as Ctor;
  }
  return new ctor(address, credentials(tls));
}

/** CreateCertificate; resolves to the chain, rejects with the gRPC error. */
export function createCertificate(client: ReturnType<typeof caClient>, csr: string, opts: { token?: string; validitySeconds?: number } = {}): Promise<string[]> {
  const md = new grpc.Metadata();
  if (opts.token) md.set('authorization', `Bearer ${opts.token}`);
  return new Promise((resolve, reject) => {
    client.CreateCertificate({ csr, validity_duration: String(opts.validitySeconds ?? 0) }, md, (err, res) => (err ? reject(err) : resolve(res!.cert_chain)));
  });
}

/** An ADS stream over TLS (or 'plaintext') that says who it is (node id) and asks for listeners. */
export function adsStreamOverTls(address: string, tls: ClientTls | 'plaintext', nodeId: string): { client: grpc.Client; call: grpc.ClientDuplexStream<object, object> } {
  if (!adsCtor) {
    const def = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
    adsCtor = (grpc.loadPackageDefinition(def) as any).envoy.service.discovery.v3.AggregatedDiscoveryService;
  }
  const client = new adsCtor!(address, credentials(tls));
  const call = client.StreamAggregatedResources();
  call.on('error', () => undefined); // ended by the test's teardown
  call.write({ node: { id: nodeId }, type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener', resource_names: [] });
  return { client, call };
}
