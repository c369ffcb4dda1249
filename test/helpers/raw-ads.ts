// A raw ADS client for protocol tests: sends DiscoveryRequests exactly as given and queues every
// DiscoveryResponse, so tests can check nonces, versions and order byte for byte.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { decodeResource } from '../../control-plane/envoy/check.ts';
import { PROTO_INCLUDE_DIRS } from '../../control-plane/envoy/protos.ts';

export interface RawResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: Array<{ type_url: string; value: Buffer }>;
}

export interface RawRequest {
  node?: { id: string; metadata?: unknown; user_agent_name?: string; locality?: Record<string, string> };
  type_url: string;
  resource_names?: string[];
  version_info?: string;
  response_nonce?: string;
  error_detail?: { code: number; message: string };
}

type AdsClient = grpc.Client & {
  StreamAggregatedResources(): grpc.ClientDuplexStream<RawRequest, RawResponse>;
  DeltaAggregatedResources(): grpc.ClientDuplexStream<RawDeltaRequest, RawDeltaResponse>;
};

export interface RawDeltaRequest {
  node?: RawRequest['node'];
  type_url: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code: number; message: string };
}

export interface RawDeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  removed_resources: string[];
  resources: Array<{ name: string; version: string; resource: { type_url: string; value: Buffer } }>;
}
let Ctor: (new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => AdsClient) | undefined;

function clientCtor() {
  if (Ctor) return Ctor;
  const def = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  Ctor = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
  return Ctor!;
}

/** Converts plain JSON metadata to the Struct shape proto-loader expects. */
export function toStruct(o: Record<string, unknown>): unknown {
  const value = (v: unknown): unknown => {
    // protobufjs's struct.proto uses camelCase field names, whatever keepCase says.
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    if (v && typeof v === 'object') return { structValue: toStruct(v as Record<string, unknown>) };
    return { nullValue: 'NULL_VALUE' };
  };
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, value(v)])) };
}

class RawStream<Req, Res> {
  protected client: AdsClient;
  private call: grpc.ClientDuplexStream<Req, Res>;
  private queue: Res[] = [];
  private waiters: Array<() => void> = [];
  error?: grpc.ServiceError;
  ended = false;

  constructor(address: string, open: (c: AdsClient) => grpc.ClientDuplexStream<Req, Res>, options?: grpc.ChannelOptions, credentials = grpc.credentials.createInsecure()) {
    this.client = new (clientCtor())(address, credentials, options);
    this.call = open(this.client);
    this.call.on('data', (r: Res) => {
      this.queue.push(r);
      this.wake();
    });
    this.call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
      this.wake();
    });
    this.call.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(req: Req): void {
    this.call.write(req);
  }

  /** The next response, or an error after timeoutMs. */
  async next(timeoutMs = 5000): Promise<Res> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const r = this.queue.shift();
      if (r) return r;
      if (this.error) throw this.error;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no response within deadline');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** True if no response arrives within ms (for "nothing is sent" checks). */
  async quiet(ms: number): Promise<boolean> {
    try {
      const r = await this.next(ms);
      this.queue.unshift(r);
      return false;
    } catch {
      return true;
    }
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

export class RawAdsClient extends RawStream<RawRequest, RawResponse> {
  /** `options`: e.g. `{ 'grpc.use_local_subchannel_pool': 1 }` for a connection of its own; plaintext unless `credentials` say otherwise. */
  constructor(address: string, options?: grpc.ChannelOptions, credentials?: grpc.ChannelCredentials) {
    super(address, (c) => c.StreamAggregatedResources(), options, credentials);
  }
}

export class RawDeltaClient extends RawStream<RawDeltaRequest, RawDeltaResponse> {
  constructor(address: string, options?: grpc.ChannelOptions) {
    super(address, (c) => c.DeltaAggregatedResources(), options);
  }
}

export function deltaNames(r: RawDeltaResponse): string[] {
  return r.resources.map((x) => x.name);
}

export function deltaDecoded(r: RawDeltaResponse): Array<Record<string, unknown>> {
  return r.resources.map((x) => decodeResource(x.resource) as Record<string, unknown>);
}

export function decoded(r: RawResponse): Array<Record<string, unknown>> {
  return r.resources.map((a) => decodeResource(a) as Record<string, unknown>);
}

export function names(r: RawResponse): string[] {
  return decoded(r).map((x) => String(x.name ?? x.cluster_name));
}
