// The pod agent, wired: the certificate loop, the SDS server for Envoy, the readiness endpoint for
// the kubelet and the gRPC bootstrap for proxyless workloads. `meshpilot agent` runs this; tests
// start it in-process.
import fs from 'node:fs';
import type { Logger } from '../log.ts';
import type { CaClientOptions } from './ca-client.ts';
import { CertAgent } from './cert-agent.ts';
import { certFilePaths } from './cert-files.ts';
import { writeGrpcBootstrap, type XdsChannelCreds } from './grpc-bootstrap.ts';
import type { Identity } from '../ca/identity.ts';
import { startSdsServer, type SdsServer } from './sds-server.ts';
import { startReadyServer, type ReadyServer } from './ready-server.ts';

export interface AgentOptions {
  identity: Identity;
  ca: CaClientOptions;
  outDir: string;
  validitySeconds: number;
  /** Unix socket path; none: no SDS server (a proxyless pod). */
  sdsSocket?: string;
  /** Where to serve GET /healthz/ready (200 once there is a certificate); none: not served. */
  readyListen?: { host: string; port: number };
  grpcBootstrap?: {
    file: string;
    xdsAddress: string;
    creds: XdsChannelCreds;
    podIp: string;
    podName: string;
    labels: Record<string, string>;
  };
  logger: Logger;
  backoff?: { initialMs: number; maxMs: number };
}

export interface RunningAgent {
  certs: CertAgent;
  sds: SdsServer | undefined;
  ready: ReadyServer | undefined;
  stop(): Promise<void>;
}

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  fs.mkdirSync(o.outDir, { recursive: true });
  const certs = new CertAgent({ identity: o.identity, ca: o.ca, outDir: o.outDir, validitySeconds: o.validitySeconds, logger: o.logger, ...(o.backoff ? { backoff: o.backoff } : {}) });
  if (o.grpcBootstrap) {
    const b = o.grpcBootstrap;
    const ns = o.identity.namespace;
    writeGrpcBootstrap(b.file, {
      xdsAddress: b.xdsAddress,
      creds: b.creds,
      files: certFilePaths(o.outDir),
      nodeId: `sidecar~${b.podIp}~${b.podName}.${ns}~${ns}.svc.cluster.local`,
      namespace: ns,
      labels: b.labels,
      serviceAccount: o.identity.serviceAccount,
    });
  }
  // SDS first so Envoy can connect at once; it answers when the first certificate arrives.
  const sds = o.sdsSocket ? await startSdsServer(certs, o.sdsSocket, o.logger) : undefined;
  // After SDS: ready means Envoy can fetch the certificate from the socket at once.
  let ready: ReadyServer | undefined;
  try {
    ready = o.readyListen ? await startReadyServer(o.readyListen, () => certs.current() !== undefined, o.logger) : undefined;
  } catch (e) {
    await sds?.stop();
    throw e;
  }
  await certs.start();
  return {
    certs,
    sds,
    ready,
    async stop() {
      await certs.stop();
      await ready?.stop();
      await sds?.stop();
    },
  };
}
