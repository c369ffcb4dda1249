// Which proxy may read which credentials. Istio's rule for gateways: a gateway reads the Secrets of
// its own namespace. A DestinationRule's credentialName reaches sidecars in Istio only when the
// rule has a workloadSelector, which meshpilot's DestinationRule does not have, so sidecars and
// proxyless gRPC read none. The namespace is the node's (checked against its certificate with
// --xds-tls; without it a node's claim is believed, so keep the xDS port private).
import type { Proxy } from '../translate/proxy.ts';

/**
 * A gateway: node id type `router` (`router~10.0.0.1~ingress-abc.istio-system~...`), as Istio's
 * gateways present themselves. Kept here until the Gateway kind gives the proxy a type of its own.
 */
export function isRouter(proxy: Pick<Proxy, 'id' | 'kind'>): boolean {
  return proxy.kind === 'envoy' && proxy.id.startsWith('router~');
}

/** The namespace whose credentials `proxy` may read, or undefined for none. */
export function credentialNamespace(proxy: Proxy): string | undefined {
  return isRouter(proxy) ? proxy.namespace : undefined;
}
