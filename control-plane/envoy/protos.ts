// Loads Envoy's v3 protos from the installed @grpc/grpc-js-xds package (never copied into the repo)
// into ONE protobufjs Root, lazily, and caches it for the life of the process.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const xdsPkgDir = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
// protobufjs bundles descriptor.proto (imported by validate.proto); the other google/protobuf WKTs
// are built into protobufjs itself.
const protobufjsDir = path.dirname(require.resolve('protobufjs/package.json'));

/** Include dirs for protobufjs and @grpc/proto-loader (the gRPC server uses the same list). */
export const PROTO_INCLUDE_DIRS: readonly string[] = [
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(xdsPkgDir, 'deps', d)),
  protobufjsDir,
];

const envoyDir = PROTO_INCLUDE_DIRS[0];

/** All .proto files directly inside an Envoy API directory ([] if the directory is not shipped). */
function protosIn(dir: string): string[] {
  const abs = path.join(envoyDir, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs).filter((f) => f.endsWith('.proto')).sort().map((f) => `${dir}/${f}`);
}

/** Every v3 subdirectory of a directory, e.g. each load_balancing_policies/<name>/v3. */
function v3DirsUnder(dir: string): string[] {
  const abs = path.join(envoyDir, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs).sort().map((d) => `${dir}/${d}/v3`).filter((d) => fs.existsSync(path.join(envoyDir, d)));
}

/** Entry files loaded into the root (their imports come along). Directories that are missing are skipped. */
export const PROTO_FILES: readonly string[] = [
  ...[
    'envoy/config/listener/v3',
    'envoy/config/route/v3',
    'envoy/config/cluster/v3',
    'envoy/config/endpoint/v3',
    'envoy/config/core/v3',
    'envoy/config/rbac/v3',
    'envoy/extensions/filters/network/http_connection_manager/v3',
    'envoy/extensions/filters/network/tcp_proxy/v3',
    'envoy/extensions/filters/http/router/v3',
    'envoy/extensions/filters/http/fault/v3',
    'envoy/extensions/filters/http/rbac/v3',
    'envoy/extensions/filters/http/ext_authz/v3',
    'envoy/extensions/path/match/uri_template/v3',
    'envoy/extensions/filters/http/local_ratelimit/v3',
    'envoy/extensions/filters/http/cors/v3',
    'envoy/extensions/filters/http/jwt_authn/v3',
    'envoy/extensions/filters/listener/original_dst/v3',
    'envoy/extensions/filters/listener/http_inspector/v3',
    'envoy/extensions/filters/listener/tls_inspector/v3',
    'envoy/extensions/transport_sockets/tls/v3',
    ...v3DirsUnder('envoy/extensions/load_balancing_policies'),
    ...v3DirsUnder('envoy/extensions/retry/host'), // retry_host_predicate, e.g. previous_hosts
    ...v3DirsUnder('envoy/extensions/retry/priority'),
  ].flatMap(protosIn),
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  // The bootstrap, so sidecar bootstraps (ours and the injector's) are checked like resources.
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/discovery/v3/ads.proto',
].filter((f) => fs.existsSync(path.join(envoyDir, f)));

let root: protobuf.Root | undefined;
let loadMs = 0;

/** The shared Root (keepCase: field names are snake_case, as in Envoy's docs). Loaded on first call. */
export function getRoot(): protobuf.Root {
  if (root) return root;
  const t0 = performance.now();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of PROTO_INCLUDE_DIRS) {
      const p = path.join(dir, target);
      if (fs.existsSync(p)) return p;
    }
    return target;
  };
  r.loadSync([...PROTO_FILES], { keepCase: true });
  r.resolveAll();
  loadMs = performance.now() - t0;
  root = r;
  return r;
}

/** Milliseconds the first getRoot() call spent loading (0 before it is loaded). */
export function protoLoadMillis(): number {
  return loadMs;
}

/** Looks up a message type by full name (with or without a leading dot); throws if unknown. */
export function lookupType(fullName: string): protobuf.Type {
  return getRoot().lookupType(fullName.startsWith('.') ? fullName : `.${fullName}`);
}

/** Looks up a message type by full name; undefined if it is not a loaded message type. */
export function findType(fullName: string): protobuf.Type | undefined {
  const t = getRoot().lookup(fullName.startsWith('.') ? fullName : `.${fullName}`);
  return t instanceof protobuf.Type ? t : undefined;
}

// protobufjs recomputes `fullName` from the parent chain on every access; hot paths use this cache.
const names = new WeakMap<protobuf.ReflectionObject, string>();
/** Full name without the leading dot, e.g. "envoy.config.cluster.v3.Cluster". */
export function nameOf(t: protobuf.ReflectionObject): string {
  let n = names.get(t);
  if (n === undefined) {
    n = t.fullName.slice(1);
    names.set(t, n);
  }
  return n;
}

export const TYPE_URL = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;

/** Full type name of a type URL: everything after the last '/'. */
export function typeNameOfUrl(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}
