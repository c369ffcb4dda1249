// A real xDS-enabled gRPC server (grpc-js-xds XdsServer) serving meshpilot.demo.v1.Echo, driven
// by meshpilot: it asks for the Listener `xds.istio.io/grpc/lds/inbound/127.0.0.1:<port>` and
// serves only once it has it, with the HTTP filters (RBAC) that Listener carries.
//
// The server process must have GRPC_XDS_EXPERIMENTAL_RBAC=true in its environment before
// @grpc/grpc-js-xds is loaded, or it rejects (NACKs) listeners with an RBAC filter.
//
// grpc-js-xds 1.14.1 quirks handled here:
// - XdsServer.bindAsync needs a non-zero port: one is reserved on 127.0.0.1 first.
// - It then listens on every interface (net.Server#listen(port) with no host). Test servers are
//   kept on loopback by pinning the listen() of exactly the ports reserved here to 127.0.0.1.
// - Its default drain time is 10 minutes; servers here drain in 100 ms.
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import type { BackendInfo, CallReply, CallRequest } from './backends.ts';
import { loadEcho } from './backends.ts';

/** Channel/server option read by grpc-js-xds instead of the process-wide bootstrap. */
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
/** Istio's template for proxyless gRPC servers; meshpilot answers this name. */
export const SERVER_LISTENER_TEMPLATE = 'xds.istio.io/grpc/lds/inbound/%s';

export interface XdsServerOptions {
  /** 'host:port' of meshpilot's ADS server. */
  xdsAddress: string;
  service: string;
  version: string;
  /** Defaults to 'default'. */
  namespace?: string;
  /** Pod labels (node metadata LABELS); default app: <service>, version: <version>. */
  labels?: Record<string, string>;
  /**
   * Port on 127.0.0.1, from reserveLoopbackPort() (so the mesh's ServiceEntry can name it before the
   * server starts); reserved here when left out.
   */
  port?: number;
  /** How long to wait for meshpilot's Listener (default 20 s). */
  readyTimeoutMs?: number;
  /** Bootstrap `certificate_providers` (mTLS: the Listener's TLS context names instance `default`). */
  certificateProviders?: Record<string, unknown>;
  /** Default insecure; XdsServerCredentials to act on the Listener's TLS context. */
  credentials?: grpc.ServerCredentials;
}

export interface XdsEchoServer extends BackendInfo {
  readonly nodeId: string;
  stop(): void;
}

// ---- keeping XdsServer on loopback -----------------------------------------------------------

const loopbackPorts = new Set<number>();
let listenPatched = false;

function pinToLoopback(port: number): void {
  loopbackPorts.add(port);
  if (listenPatched) return;
  listenPatched = true;
  const listen = net.Server.prototype.listen as (this: net.Server, ...args: unknown[]) => net.Server;
  // XdsServer calls tcpServer.listen(port, callback); only those calls, on ports we reserved, change.
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    if (typeof args[0] === 'number' && loopbackPorts.has(args[0]) && typeof args[1] === 'function') {
      return listen.call(this, args[0], '127.0.0.1', args[1]);
    }
    return listen.apply(this, args);
  } as typeof net.Server.prototype.listen;
}

/** A free port on 127.0.0.1 (XdsServer cannot bind port 0). */
export async function reserveLoopbackPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

// ---- the server ------------------------------------------------------------------------------

/**
 * The request's headers, plus (mTLS) the verified client certificate as pseudo-headers no real
 * header can be: `:peer-uri` (its URI SANs) and `:peer-serial`.
 */
function headersOf(call: grpc.ServerUnaryCall<unknown, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(call.metadata.getMap())) if (typeof v === 'string') out[k] = v;
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (cert) {
    const uris = (cert.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
    out[':peer-uri'] = uris.join(',');
    out[':peer-serial'] = cert.serialNumber;
  }
  return out;
}

export async function startXdsEchoServer(opts: XdsServerOptions): Promise<XdsEchoServer> {
  grpcXds.register();
  const namespace = opts.namespace ?? 'default';
  const labels = opts.labels ?? { app: opts.service, version: opts.version };
  const port = opts.port ?? (await reserveLoopbackPort());
  pinToLoopback(port);
  const address = `127.0.0.1:${port}`;
  const nodeId = `sidecar~127.0.0.1~${opts.service}-${opts.version}-${port}.${namespace}~${namespace}.svc.cluster.local`;
  const bootstrap = JSON.stringify({
    xds_servers: [{ server_uri: opts.xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, metadata: { GENERATOR: 'grpc', NAMESPACE: namespace, LABELS: labels }, locality: {} },
    server_listener_resource_name_template: SERVER_LISTENER_TEMPLATE,
    ...(opts.certificateProviders ? { certificate_providers: opts.certificateProviders } : {}),
  });

  const server = new grpcXds.XdsServer({ [BOOTSTRAP_OPTION]: bootstrap, drainGraceTimeMs: 100 } as grpc.ServerOptions);
  const instance = `${opts.service}-${opts.version}@${address}`;
  server.addService(loadEcho().service, {
    Call(call: grpc.ServerUnaryCall<CallRequest, CallReply>, callback: grpc.sendUnaryData<CallReply>) {
      callback(null, { service: opts.service, version: opts.version, instance, request_headers: headersOf(call) });
    },
  });

  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  try {
    // The callback comes only once meshpilot's Listener for this address has arrived and is used.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`XdsServer ${address} got no usable Listener from meshpilot within ${timeoutMs} ms`)), timeoutMs);
      server.bindAsync(address, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      });
    });
  } catch (err) {
    server.forceShutdown();
    loopbackPorts.delete(port);
    throw err;
  }

  let stopped = false;
  return {
    service: opts.service,
    version: opts.version,
    port,
    address,
    nodeId,
    stop() {
      if (stopped) return;
      stopped = true;
      server.forceShutdown();
      loopbackPorts.delete(port);
    },
  };
}
