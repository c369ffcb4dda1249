// Which proxy may read which credentials. Istio's rule for gateways: a gateway reads the Secrets of
// its own namespace. A DestinationRule's credentialName reaches sidecars in Istio only when the
// rule has a workloadSelector, which meshpilot's DestinationRule does not have, so sidecars and
// proxyless gRPC read none. The namespace is the node's (checked against its certificate with
// --xds-tls; without it a node's claim is believed, so keep the xDS port private).
import type { Proxy } from '../translate/proxy.ts';

/** The namespace whose credentials `proxy` may read, or undefined for none. A gateway is
 * `Proxy.router` (node type `router`, read by proxyFromNode): the one notion the translator uses too. */
export function credentialNamespace(proxy: Proxy): string | undefined {
  return proxy.router ? proxy.namespace : undefined;
}
