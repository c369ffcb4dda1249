// A proxyless gRPC client driven by meshpilot over xDS, using the real
// @grpc/grpc-js-xds resolver and load balancers.
//
// Each client has its own identity (node id, namespace, labels, locality),
// given to grpc-js-xds as a per-channel bootstrap, so one test process can
// hold several "pods". One channel is kept per target and reused.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { loadEcho, type CallReply, type CallRequest } from './backends.ts';

export type { CallReply } from './backends.ts';

/** Channel option read by grpc-js-xds instead of the process-wide bootstrap file. */
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';

export interface XdsClientOptions {
  /** 'host:port' of meshpilot's ADS server. */
  xdsAddress: string;
  /** Defaults to an Istio-style sidecar id for a made-up pod. */
  nodeId?: string;
  /** Defaults to 'default'. */
  namespace?: string;
  /** Pod labels sent as node metadata LABELS (defaults to app: client, version: v1). */
  labels?: Record<string, string>;
  /** Node metadata NETWORK: the client's network (left out by default). */
  network?: string;
  /** Node locality; gRPC requires one, {} is the default. */
  locality?: { region?: string; zone?: string; sub_zone?: string };
  /** Bootstrap `certificate_providers` (mTLS: TLS contexts name instance `default`). */
  certificateProviders?: Record<string, unknown>;
  /** Node metadata SERVICE_ACCOUNT (the workload's identity, as Istio's bootstraps carry it). */
  serviceAccount?: string;
  /** Default insecure; XdsChannelCredentials to act on the clusters' TLS contexts. */
  credentials?: grpc.ChannelCredentials;
  /** More channel options, e.g. `grpc.use_local_subchannel_pool` for connections of its own. */
  channelOptions?: grpc.ChannelOptions;
}

export interface XdsClient {
  /** The node id this client sends. */
  readonly nodeId: string;
  /** One unary Echo.Call to an `xds:///host:port` target. */
  call(target: string, metadata?: Record<string, string>, deadlineMs?: number): Promise<CallReply>;
  /**
   * Sends n calls and counts replies by version. A failed call is counted under
   * `error:<STATUS>` (e.g. `error:UNAVAILABLE`), so an assertion on the split
   * also fails when calls fail.
   */
  split(target: string, n: number, metadata?: Record<string, string>): Promise<Record<string, number>>;
  close(): void;
}

let registered = false;

/** Registers the xds: scheme with grpc-js, once per process. */
export function registerXds(): void {
  if (registered) return;
  grpcXds.register();
  registered = true;
}

export function createXdsClient(opts: XdsClientOptions): XdsClient {
  registerXds();
  const namespace = opts.namespace ?? 'default';
  const labels = opts.labels ?? { app: 'client', version: 'v1' };
  const pod = `${labels.app ?? 'client'}-${randomBytes(4).toString('hex')}`;
  const nodeId = opts.nodeId ?? `sidecar~127.0.0.1~${pod}.${namespace}~${namespace}.svc.cluster.local`;
  const bootstrap = JSON.stringify({
    xds_servers: [
      {
        server_uri: opts.xdsAddress,
        channel_creds: [{ type: 'insecure' }],
        server_features: ['xds_v3'],
      },
    ],
    node: {
      id: nodeId,
      metadata: { GENERATOR: 'grpc', NAMESPACE: namespace, LABELS: labels, ...(opts.network ? { NETWORK: opts.network } : {}), ...(opts.serviceAccount ? { SERVICE_ACCOUNT: opts.serviceAccount } : {}) },
      locality: opts.locality ?? {},
    },
    ...(opts.certificateProviders ? { certificate_providers: opts.certificateProviders } : {}),
  });

  const method = loadEcho().service.Call as grpc.MethodDefinition<CallRequest, CallReply>;
  const clients = new Map<string, grpc.Client>();
  let closed = false;

  function clientFor(target: string): grpc.Client {
    if (closed) throw new Error('xDS client is closed');
    let client = clients.get(target);
    if (!client) {
      client = new grpc.Client(target, opts.credentials ?? grpc.credentials.createInsecure(), { ...opts.channelOptions, [BOOTSTRAP_OPTION]: bootstrap });
      clients.set(target, client);
    }
    return client;
  }

  function call(target: string, metadata: Record<string, string> = {}, deadlineMs = 5000): Promise<CallReply> {
    const client = clientFor(target);
    const md = new grpc.Metadata();
    for (const [key, value] of Object.entries(metadata)) md.set(key, value);
    const request: CallRequest = { message: 'hello' };
    return new Promise<CallReply>((resolve, reject) => {
      client.makeUnaryRequest<CallRequest, CallReply>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        md,
        { deadline: Date.now() + deadlineMs },
        (err, reply) => (err ? reject(err) : resolve(reply as CallReply)),
      );
    });
  }

  async function split(
    target: string,
    n: number,
    metadata?: Record<string, string>,
  ): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    const concurrency = 25;
    let next = 0;
    async function worker(): Promise<void> {
      while (next < n) {
        next += 1;
        let key: string;
        try {
          key = (await call(target, metadata)).version;
        } catch (err) {
          const code = (err as grpc.ServiceError).code;
          key = `error:${typeof code === 'number' ? grpc.status[code] : 'UNKNOWN'}`;
        }
        counts[key] = (counts[key] ?? 0) + 1;
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, () => worker()));
    return counts;
  }

  return {
    nodeId,
    call,
    split,
    close() {
      if (closed) return;
      closed = true;
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}
