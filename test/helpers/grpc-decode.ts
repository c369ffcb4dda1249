// grpc-js-xds's own resource decoders (the code that ACKs or NACKs), fed the bytes meshpilot
// would send, with a bootstrap context that has (or lacks) certificate provider instances.
import * as grpcXds from '@grpc/grpc-js-xds';
import { ClusterResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js';
import { ListenerResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js';
import { RouteConfigurationResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js';
import { encodeResource } from '../../control-plane/envoy/check.ts';
import type { Json } from '../../control-plane/json.ts';
import { CLUSTER, LISTENER, ROUTE_CONFIG } from '../../control-plane/translate/type-urls.ts';

grpcXds.register(); // registers the HTTP filters (router, fault, RBAC) the decoders look up

/** The NACK text grpc-js-xds would send for this resource, or undefined when it takes it. */
export function grpcRejects(resource: Json, providers: string[] = ['default']): string | undefined {
  const context = { bootstrap: { certificateProviders: Object.fromEntries(providers.map((p) => [p, { pluginName: 'file_watcher', config: {} }])) } };
  const any = encodeResource(resource as Json & { '@type': string });
  const type = resource['@type'] === LISTENER ? ListenerResourceType.get() : resource['@type'] === CLUSTER ? ClusterResourceType.get() : resource['@type'] === ROUTE_CONFIG ? RouteConfigurationResourceType.get() : undefined;
  if (!type) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const out = (type as any).decode(context, any) as { error?: string };
  return out.error;
}
