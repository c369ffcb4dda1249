// Shared inputs of the ADS protocol suites (state of the world and delta).
import { toStruct } from './raw-ads.ts';

export const MESH = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews }
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 9080, name: grpc, protocol: GRPC }]
  endpoints:
  - { address: 10.0.0.1, labels: { version: v1 } }
  - { address: 10.0.0.2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;
export const vs = (w1: number, w2: number) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: ${w1} }
    - { destination: { host: reviews, subset: v2 }, weight: ${w2} }
`;

export const GRPC_NODE = { id: 'sidecar~10.9.0.1~caller-1.default~default.svc.cluster.local', metadata: toStruct({ GENERATOR: 'grpc', NAMESPACE: 'default' }), locality: {} };
export const ENVOY_NODE = { id: 'sidecar~10.9.0.2~caller-2.default~default.svc.cluster.local', metadata: toStruct({ NAMESPACE: 'default' }), user_agent_name: 'envoy' };


/** A second service to add to MESH (appended as one more YAML document). */
const ratings = (port: number, name: string, protocol: string) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings }
spec:
  hosts: [ratings.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: ${port}, name: ${name}, protocol: ${protocol} }]
  endpoints: [{ address: 10.0.1.1 }]
`;

export const RATINGS_9080 = ratings(9080, 'grpc', 'GRPC');
export const RATINGS_9090 = ratings(9090, 'http', 'HTTP');
