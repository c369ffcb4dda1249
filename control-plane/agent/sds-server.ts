// Envoy's Secret Discovery Service (SotW StreamSecrets) on a Unix socket in the pod: Envoy asks
// for `default` and `ROOTCA` and gets a new version on every stream when the certificate renews.
// Only processes in the pod can reach the socket, so it needs no TLS of its own.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../log.ts';
import { PROTO_INCLUDE_DIRS } from '../envoy/protos.ts';
import type { CertAgent, CurrentCert } from './cert-agent.ts';
import { encodeSecrets, SECRET_TYPE_URL, type EncodedSecret } from './sds-secrets.ts';
import { listenError } from '../listen-error.ts';

export { DEFAULT_SDS_SOCKET } from './defaults.ts';

export interface SdsRequest {
  node?: { id?: string };
  version_info?: string;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}
export interface SdsResponse {
  version_info: string;
  resources: Array<{ type_url: string; value: Buffer }>;
  type_url: string;
  nonce: string;
}

let service: grpc.ServiceDefinition | undefined;
export function sdsServiceDefinition(): grpc.ServiceDefinition {
  if (service) return service;
  const def = protoLoader.loadSync('envoy/service/secret/v3/sds.proto', { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { secret: { v3: { SecretDiscoveryService: { service: grpc.ServiceDefinition } } } } } };
  service = pkg.envoy.service.secret.v3.SecretDiscoveryService.service;
  return service;
}

interface StreamState {
  call: grpc.ServerDuplexStream<SdsRequest, SdsResponse>;
  /** undefined until the first request names what it wants. */
  names: string[] | undefined;
  lastNonce: string;
  sentVersion: string;
}

export interface SdsServer {
  socketPath: string;
  /** Open StreamSecrets streams. */
  streams(): number;
  stop(): Promise<void>;
}

export async function startSdsServer(agent: CertAgent, socketPath: string, logger: Logger): Promise<SdsServer> {
  const streams = new Set<StreamState>();
  let version = '';
  let secrets = new Map<string, EncodedSecret>();

  const install = (cur: CurrentCert) => {
    secrets = encodeSecrets(cur);
    version = cur.cert.serial;
  };
  const cur = agent.current();
  if (cur) install(cur);

  const send = (s: StreamState) => {
    if (!version || !s.names) return;
    // No names: everything (SotW wildcard). Names Envoy asks for that we do not have stay out.
    const wanted = s.names.length ? s.names : [...secrets.keys()];
    const unknown = wanted.filter((n) => !secrets.has(n));
    if (unknown.length) logger.warn({ unknown }, 'sds: asked for secrets the agent does not have');
    s.lastNonce = randomBytes(8).toString('hex');
    s.sentVersion = version;
    s.call.write({ version_info: version, type_url: SECRET_TYPE_URL, nonce: s.lastNonce, resources: wanted.flatMap((n) => secrets.get(n)?.any ?? []) });
  };

  const onCert = (c: CurrentCert) => {
    install(c);
    for (const s of streams) send(s);
  };
  agent.on('cert', onCert);

  const server = new grpc.Server();
  server.addService(sdsServiceDefinition(), {
    StreamSecrets(call: grpc.ServerDuplexStream<SdsRequest, SdsResponse>) {
      const s: StreamState = { call, names: undefined, lastNonce: '', sentVersion: '' };
      streams.add(s);
      call.on('data', (req: SdsRequest) => {
        // A request answering an older response is stale: its newer answer is on its way.
        if (req.response_nonce && req.response_nonce !== s.lastNonce) return;
        if (req.error_detail && req.error_detail.message) {
          logger.warn({ node: req.node?.id, version: req.version_info, error: req.error_detail.message }, 'sds: Envoy rejected secrets');
          return;
        }
        const names = [...(req.resource_names ?? [])].sort();
        const changed = !s.names || names.join('\n') !== s.names.join('\n');
        s.names = names;
        // Answer a new subscription, or a stream that has not got the current version; an ACK
        // (same names, version already sent) needs nothing.
        if (changed || s.sentVersion !== version) send(s);
      });
      const end = () => streams.delete(s);
      call.on('end', () => {
        end();
        call.end();
      });
      call.on('error', end);
      call.on('close', end);
    },
    DeltaSecrets(call: grpc.ServerDuplexStream<unknown, unknown>) {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'DeltaSecrets is not served; use StreamSecrets' });
    },
    FetchSecrets(_call: unknown, cb: grpc.sendUnaryData<unknown>) {
      cb({ code: grpc.status.UNIMPLEMENTED, details: 'FetchSecrets is not served; use StreamSecrets' });
    },
  });

  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  fs.rmSync(socketPath, { force: true }); // a socket left by an earlier run blocks the bind
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(listenError(`unix:${socketPath}`, err)) : resolve())));
  logger.info({ socket: socketPath }, 'sds: serving secrets');

  return {
    socketPath,
    streams: () => streams.size,
    async stop() {
      agent.off('cert', onCert);
      for (const s of streams) s.call.end();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      fs.rmSync(socketPath, { force: true });
    },
  };
}
