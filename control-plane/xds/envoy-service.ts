// A gRPC service of Envoy's API (ADS, LRS) as the server registers it, loaded from the protos of
// @grpc/grpc-js-xds with the options every such service here is read with (field names as in the
// .proto, 64-bit numbers and enums as strings, no filled-in defaults).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_INCLUDE_DIRS } from '../envoy/protos.ts';

/** `file` (e.g. `envoy/service/load_stats/v3/lrs.proto`), its service `name` by full dotted name. */
export function envoyService(file: string, name: string): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(file, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
  let node: unknown = grpc.loadPackageDefinition(def);
  for (const part of name.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  const service = (node as { service?: grpc.ServiceDefinition } | undefined)?.service;
  if (!service) throw new Error(`${file} has no service ${name}`);
  return service;
}
