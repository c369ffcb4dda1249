// istio.v1.auth.IstioCertificateService/CreateCertificate, registrable on any grpc.Server (served
// on the xDS port, as Istio serves it on 15012). The caller is who a bearer token says (bootstrap
// tokens, Kubernetes TokenReview) or, to renew, who its verified client certificate says; the CSR
// may only ask for that identity.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../log.ts';
import { Authority, CaError } from './authority.ts';
import type { TokenAuthenticator } from './bootstrap-tokens.ts';
import { formatSpiffeId, type Identity } from './identity.ts';
import { peerIdentity } from './peer-identity.ts';

export type CaOutcome = 'issued' | 'denied' | 'unauthenticated' | 'invalid' | 'error';

export interface CaObserver {
  caRequest(outcome: CaOutcome): void;
}

interface CertificateRequest {
  csr?: string;
  validity_duration?: string | number;
}

const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
let definition: grpc.ServiceDefinition | undefined;

export function caServiceDefinition(): grpc.ServiceDefinition {
  if (definition) return definition;
  const pkg = protoLoader.loadSync('istio/v1/auth/ca.proto', { includeDirs: [PROTO_ROOT], keepCase: true, longs: String, enums: String, defaults: false });
  const loaded = grpc.loadPackageDefinition(pkg) as unknown as { istio: { v1: { auth: { IstioCertificateService: { service: grpc.ServiceDefinition } } } } };
  definition = loaded.istio.v1.auth.IstioCertificateService.service;
  return definition;
}

export interface CaServiceOptions {
  authority: Authority;
  /** Tried in order for a bearer token; the first that accepts it decides. */
  tokens: TokenAuthenticator[];
  log: Logger;
  observer?: CaObserver;
}

function bearer(md: grpc.Metadata): string | undefined {
  const v = md.get('authorization')[0];
  const m = typeof v === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(v) : undefined;
  return m?.[1];
}

class Refusal extends Error {
  constructor(readonly code: grpc.status, readonly outcome: CaOutcome, message: string) {
    super(message);
  }
}

/** Who is calling, and how we know; a refusal when nobody can tell. */
async function authenticate(call: grpc.ServerUnaryCall<unknown, unknown>, o: CaServiceOptions): Promise<{ identity: Identity; via: string }> {
  const token = bearer(call.metadata);
  if (token) {
    for (const a of o.tokens) {
      let id: Identity | undefined;
      try {
        id = await a.authenticate(token);
      } catch (e) {
        o.log.error({ authenticator: a.name, err: (e as Error).message }, 'CA token check failed');
        throw new Refusal(grpc.status.UNAVAILABLE, 'error', `cannot check the token now (${a.name})`);
      }
      if (id) return { identity: id, via: a.name };
    }
  }
  const peer = peerIdentity(call, o.authority.trustDomain);
  if (peer) return { identity: peer, via: 'client-certificate' };
  throw new Refusal(grpc.status.UNAUTHENTICATED, 'unauthenticated', token ? 'bearer token not accepted' : 'no credential: send "authorization: Bearer <token>" or present a client certificate from this CA');
}

export function caServiceHandlers(o: CaServiceOptions): grpc.UntypedServiceImplementation {
  const count = (outcome: CaOutcome) => o.observer?.caRequest(outcome);
  return {
    CreateCertificate: (call: grpc.ServerUnaryCall<CertificateRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      void (async () => {
        let who: { identity: Identity; via: string } | undefined;
        try {
          who = await authenticate(call, o);
          const seconds = Number(call.request.validity_duration ?? 0);
          const r = await o.authority.sign(call.request.csr ?? '', who.identity, Number.isFinite(seconds) ? seconds : 0);
          count('issued');
          o.log.info({ identity: formatSpiffeId(who.identity), via: who.via, serial: r.serial, notAfter: r.notAfter.toISOString() }, 'workload certificate issued');
          // As Istio's CA answers: leaf, intermediates, then every trusted root in the last entry
          // (several during a root rotation), which is how workloads learn a staged root.
          callback(null, { cert_chain: [...r.chain.slice(0, -1), r.bundle] });
        } catch (e) {
          if (e instanceof Refusal) {
            count(e.outcome);
            if (e.outcome === 'unauthenticated') o.log.info({ peer: call.getPeer(), reason: e.message }, 'certificate request unauthenticated');
            callback({ code: e.code, details: e.message });
          } else if (e instanceof CaError) {
            count(e.kind);
            const caller = formatSpiffeId(who!.identity);
            if (e.kind === 'denied') o.log.warn({ authenticated: caller, requested: e.requested, via: who!.via, peer: call.getPeer() }, 'certificate request denied: the CSR names another identity');
            else o.log.info({ identity: caller, reason: e.message }, 'certificate request invalid');
            callback({ code: e.kind === 'denied' ? grpc.status.PERMISSION_DENIED : grpc.status.INVALID_ARGUMENT, details: e.message });
          } else {
            count('error');
            o.log.error({ err: e }, 'certificate request failed');
            callback({ code: grpc.status.INTERNAL, details: 'internal error' });
          }
        }
      })();
    },
  };
}

/** Adds the service to `server` (call before it binds). */
export function addCaService(server: Pick<grpc.Server, 'addService'>, o: CaServiceOptions): void {
  server.addService(caServiceDefinition(), caServiceHandlers(o));
}
