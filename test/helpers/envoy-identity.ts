// Workload identity for Envoy-in-the-loop mTLS (test/envoy-e2e.test.ts): one real agent
// (startAgent, in-process) per Envoy, with its certificate from meshpilot's mesh CA and its SDS on
// a Unix socket the Envoy's bootstrap names; and what can be checked of it without Envoy: the
// secrets as Envoy would fetch them over that socket, and a node:tls handshake made with them the
// way the generated TLS contexts say (client certificate required, the peer's URI SAN matched).
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startAgent, type RunningAgent } from '../../control-plane/agent/agent.ts';
import { SECRET_TYPE_URL } from '../../control-plane/agent/sds-secrets.ts';
import type { SdsRequest, SdsResponse } from '../../control-plane/agent/sds-server.ts';
import { decodeResource } from '../../control-plane/envoy/check.ts';
import { PROTO_INCLUDE_DIRS } from '../../control-plane/envoy/protos.ts';
import { captureLogs } from './log-capture.ts';
import type { EnvoyMesh } from './envoy-mesh.ts';
import { caToken } from './envoy-mesh.ts';
import type { Teardown } from './test-mesh.ts';

type Json = Record<string, any>;

export const TRUST_DOMAIN = 'cluster.local';
export const spiffeId = (sa: string, ns = 'default') => `spiffe://${TRUST_DOMAIN}/ns/${ns}/sa/${sa}`;

export interface SdsAgent {
  sa: string;
  spiffeId: string;
  /** The agent's SDS socket (what the Envoy bootstrap's `sds-grpc` cluster names). */
  socket: string;
  agent: RunningAgent;
}

/**
 * An agent for service account `sa` of namespace default, getting its certificate from the mesh
 * CA on meshpilot's TLS port with the bootstrap token startEnvoyMesh wrote, and serving SDS on
 * `<dir>/<sa>/sds.sock`. Resolves once it holds a certificate (15 s at most).
 */
export async function startSdsAgent(teardown: Teardown, mesh: EnvoyMesh, dir: string, sa: string): Promise<SdsAgent> {
  if (!mesh.cp.ca) throw new Error('startSdsAgent needs a mesh started with its CA (startEnvoyMesh(..., { ca }))');
  const home = path.join(dir, sa);
  fs.mkdirSync(home, { recursive: true });
  const tokenFile = path.join(home, 'token');
  fs.writeFileSync(tokenFile, `${caToken(sa)}\n`);
  const socket = path.join(home, 'sds.sock');
  const agent = await startAgent({
    identity: { trustDomain: TRUST_DOMAIN, namespace: 'default', serviceAccount: sa },
    ca: { address: mesh.cp.xdsAddress, caRootPem: fs.readFileSync(mesh.cp.ca.trustBundlePath, 'utf8'), tokenFile },
    outDir: path.join(home, 'certs'),
    validitySeconds: 3600,
    sdsSocket: socket,
    logger: captureLogs().logger,
    backoff: { initialMs: 100, maxMs: 400 },
  });
  teardown.add(() => agent.stop());
  await Promise.race([agent.certs.ready(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${sa}: no certificate from the mesh CA within 15 s`)), 15_000).unref())]);
  return { sa, spiffeId: spiffeId(sa), socket, agent };
}

/** Envoy's `Secret` resources (decoded proto JSON) by name, as an SDS client gets them. */
export type Secrets = Map<string, Json>;

/** Subscribes to `names` on the agent's SDS socket, as Envoy does, and returns the first answer. */
export async function fetchSdsSecrets(socket: string, names: string[], timeoutMs = 10_000): Promise<Secrets> {
  const def = protoLoader.loadSync('envoy/service/secret/v3/sds.proto', { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.envoy.service.secret.v3.SecretDiscoveryService(`unix:${socket}`, grpc.credentials.createInsecure()) as grpc.Client & {
    StreamSecrets(): grpc.ClientDuplexStream<SdsRequest, SdsResponse>;
  };
  const call = client.StreamSecrets();
  try {
    const first = await new Promise<SdsResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SDS answer on ${socket} within ${timeoutMs} ms`)), timeoutMs);
      call.once('data', (r: SdsResponse) => {
        clearTimeout(timer);
        resolve(r);
      });
      call.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      call.write({ node: { id: 'envoy-e2e-sds-check' }, type_url: SECRET_TYPE_URL, resource_names: names });
    });
    if (first.type_url !== SECRET_TYPE_URL) throw new Error(`SDS answered type ${first.type_url}`);
    return new Map(first.resources.map((a) => decodeResource(a) as Json).map((s) => [s.name as string, s]));
  } finally {
    call.on('error', () => undefined);
    call.cancel();
    client.close();
  }
}

/** What a TLS endpoint holds: the identity secret (`default`) and the trust secret (`ROOTCA`). */
export interface TlsMaterial {
  identity?: Json;
  roots: Json;
}

export interface HandshakeResult {
  ok: boolean;
  error?: string;
  /** The client certificate's URI SANs as the server saw them (verified). */
  serverSawPeer?: string[];
  /** ALPN agreed. */
  alpn?: string | false | null;
}

const uriSans = (cert: { subjectaltname?: string } | undefined) =>
  (cert?.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));

/**
 * A node:tls handshake on loopback: the server with `server`'s secrets requiring a client
 * certificate from the mesh roots (a DownstreamTlsContext with require_client_certificate), the
 * client with `client`'s secrets, trusting its roots and accepting the server only if its
 * certificate carries one of `serverSans` as a URI SAN (match_typed_subject_alt_names).
 */
export async function tlsHandshake(server: TlsMaterial, client: TlsMaterial, o: { serverSans: string[]; serverAlpn?: string[]; clientAlpn?: string[]; sni?: string }): Promise<HandshakeResult> {
  const pem = (m: TlsMaterial) => ({
    ...(m.identity ? { cert: m.identity.tls_certificate.certificate_chain.inline_string as string, key: m.identity.tls_certificate.private_key.inline_string as string } : {}),
    ca: m.roots.validation_context.trusted_ca.inline_string as string,
  });
  let serverSawPeer: string[] | undefined;
  const srv = tls.createServer({ ...pem(server), requestCert: true, rejectUnauthorized: true, ...(o.serverAlpn?.length ? { ALPNProtocols: o.serverAlpn } : {}) }, (s) => {
    serverSawPeer = uriSans(s.getPeerCertificate());
    s.end('ok');
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise<HandshakeResult>((resolve) => {
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        ...pem(client),
        ...(o.sni ? { servername: o.sni } : {}),
        ...(o.clientAlpn?.length ? { ALPNProtocols: o.clientAlpn } : {}),
        checkServerIdentity: (_host, cert) => {
          const have = uriSans(cert);
          return o.serverSans.some((s) => have.includes(s)) ? undefined : new Error(`server certificate has URI SANs ${JSON.stringify(have)}, none of ${JSON.stringify(o.serverSans)}`);
        },
      });
      let data = '';
      let alpn: string | false | null | undefined;
      sock.on('secureConnect', () => {
        alpn = sock.alpnProtocol;
      });
      sock.on('data', (d) => (data += d.toString()));
      sock.on('error', (e) => resolve({ ok: false, error: e.message }));
      // The server answers only after verifying the client certificate (TLS 1.3 verifies it after
      // the client's handshake is done), so "ok" arriving is the proof both sides accepted.
      sock.on('close', () => resolve(data === 'ok' ? { ok: true, serverSawPeer, alpn } : { ok: false, error: `closed without an answer${data ? ` (got ${data})` : ''}` }));
    });
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}
