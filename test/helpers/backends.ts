// Real gRPC backends for end-to-end tests and the demo.
//
// Each backend is a plain @grpc/grpc-js server on 127.0.0.1 implementing
// meshpilot.demo.v1.Echo. It answers with its own identity (service, version,
// instance) so a caller can count where its calls landed, and echoes the
// metadata it received so tests can see what arrived at the server.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface CallRequest {
  message?: string;
}

export interface CallReply {
  service: string;
  version: string;
  instance: string;
  request_headers: Record<string, string>;
}

/** What other helpers need to know about a running backend. */
export interface BackendInfo {
  service: string;
  version: string;
  /** Port actually bound (never 0). */
  port: number;
  /** '127.0.0.1:PORT' */
  address: string;
}

export interface Backend extends BackendInfo {
  /** Changes the share of calls failing with UNAVAILABLE (StartBackendOptions.failShare). */
  setFailShare(share: number): void;
  stop(): Promise<void>;
}

export interface StartBackendOptions {
  service: string;
  version: string;
  /** Defaults to 0 (OS-chosen). Only the examples ask for a fixed port. */
  port?: number;
  /** Defaults to 127.0.0.1. */
  host?: string;
  /**
   * When set, every call fails with this status (after any requested delay) instead of
   * answering, e.g. grpc.status.UNAVAILABLE for a broken endpoint.
   */
  failWith?: grpc.status;
  /**
   * A share (0-1) of calls that fail with UNAVAILABLE, spread evenly (every call adds the share to
   * a running total and fails when it crosses a whole number), so 0.3 is exactly 3 in every 10.
   */
  failShare?: number;
}

/**
 * Request metadata asking a backend to wait this many milliseconds (a decimal integer, at most
 * MAX_DELAY_MS) before answering. Every backend honours it; a cancelled call stops waiting.
 */
export const DELAY_HEADER = 'x-delay-ms';
export const MAX_DELAY_MS = 60_000;

function requestedDelayMs(metadata: grpc.Metadata): number {
  const raw = metadata.get(DELAY_HEADER)[0];
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim())) return 0;
  return Math.min(Number(raw.trim()), MAX_DELAY_MS);
}

interface EchoPackage {
  service: grpc.ServiceDefinition;
}

export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
export const ECHO_PROTO_FILE = 'meshpilot/demo/v1/echo.proto';

let cachedEcho: EchoPackage | undefined;

/** Loads echo.proto once per process (keepCase: field names as in the .proto). */
export function loadEcho(): EchoPackage {
  if (cachedEcho) return cachedEcho;
  const definition = protoLoader.loadSync(ECHO_PROTO_FILE, {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    meshpilot: { demo: { v1: { Echo: grpc.ServiceClientConstructor } } };
  };
  cachedEcho = { service: loaded.meshpilot.demo.v1.Echo.service };
  return cachedEcho;
}

function metadataToHeaders(metadata: grpc.Metadata): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (typeof value === 'string') headers[key] = value;
  }
  return headers;
}

export async function startBackend(opts: StartBackendOptions): Promise<Backend> {
  const { service, version } = opts;
  const host = opts.host ?? '127.0.0.1';
  const server = new grpc.Server();
  let instance = `${service}-${version}`;
  /** Timers of calls waiting out a requested delay. */
  const pending = new Set<NodeJS.Timeout>();
  let failShare = opts.failShare ?? 0;
  let failDebt = 0;

  const handlers: grpc.UntypedServiceImplementation = {
    Call(
      call: grpc.ServerUnaryCall<CallRequest, CallReply>,
      callback: grpc.sendUnaryData<CallReply>,
    ) {
      const answer = () => {
        if (opts.failWith !== undefined) {
          callback({ code: opts.failWith, details: `${instance} is configured to fail with ${grpc.status[opts.failWith]}` });
          return;
        }
        failDebt += failShare;
        if (failDebt >= 1) {
          failDebt -= 1;
          callback({ code: grpc.status.UNAVAILABLE, details: `${instance} fails ${Math.round(failShare * 100)}% of calls` });
          return;
        }
        callback(null, {
          service,
          version,
          instance,
          request_headers: metadataToHeaders(call.metadata),
        });
      };
      const delayMs = requestedDelayMs(call.metadata);
      if (delayMs === 0) {
        answer();
        return;
      }
      const timer = setTimeout(() => {
        pending.delete(timer);
        answer();
      }, delayMs);
      pending.add(timer);
      // A caller that gave up (deadline, cancel) needs no answer; do not keep the timer alive.
      call.on('cancelled', () => {
        clearTimeout(timer);
        pending.delete(timer);
      });
    },
  };
  server.addService(loadEcho().service, handlers);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  const address = `${host}:${port}`;
  instance = `${service}-${version}@${address}`;

  let stopped = false;
  return {
    service,
    version,
    port,
    address,
    setFailShare(share: number) {
      failShare = share;
      failDebt = 0;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
      // Clients (xDS channels) may keep connections open for ever; do not wait for them.
      server.forceShutdown();
    },
  };
}

/** The services and versions of the bookinfo sample, all speaking Echo. */
export const BOOKINFO_VERSIONS: ReadonlyArray<{ service: string; version: string }> = [
  { service: 'productpage', version: 'v1' },
  { service: 'details', version: 'v1' },
  { service: 'ratings', version: 'v1' },
  { service: 'reviews', version: 'v1' },
  { service: 'reviews', version: 'v2' },
  { service: 'reviews', version: 'v3' },
];

export interface BackendSet {
  backends: Backend[];
  /** The backend of one service version; throws if there is none. */
  get(service: string, version: string): Backend;
  stop(): Promise<void>;
}

/** Starts several backends at once; if one fails to start the others are stopped. */
export async function startBackends(
  specs: ReadonlyArray<StartBackendOptions>,
): Promise<BackendSet> {
  const results = await Promise.allSettled(specs.map((spec) => startBackend(spec)));
  const backends = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const stop = async () => {
    await Promise.all(backends.map((b) => b.stop()));
  };
  if (failure) {
    await stop();
    throw failure.reason;
  }
  return {
    backends,
    get(service, version) {
      const found = backends.find((b) => b.service === service && b.version === version);
      if (!found) throw new Error(`no backend for ${service} ${version}`);
      return found;
    },
    stop,
  };
}

/** reviews v1/v2/v3, ratings v1, details v1 and productpage v1 on OS-chosen ports. */
export function startBookinfoBackends(): Promise<BackendSet> {
  return startBackends(BOOKINFO_VERSIONS);
}
