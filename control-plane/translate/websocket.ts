// http[].websocketUpgrade: true -> RouteAction.upgrade_configs for "websocket", enabled on this
// route (Envoy allows an upgrade a route enables even when the connection manager does not list
// it). Sidecars only: gRPC calls are never WebSockets, and the model warns on rules for gRPC services.
import type { Feature } from './feature.ts';

export const websocket: Feature = {
  name: 'websocket',
  grpc: false,
  route(route) {
    if (route.action.kind !== 'route' || !route.websocketUpgrade) return undefined;
    return { action: { upgrade_configs: [{ upgrade_type: 'websocket', enabled: true }] } };
  },
};
