// The rules of the mTLS end-to-end tests: ratings (one endpoint on 127.0.0.1, a service account),
// PeerAuthentication for it, a DestinationRule asking ISTIO_MUTUAL (gRPC gets no auto mTLS) and an
// AuthorizationPolicy admitting only productpage's identity; and how a caller's outcome is judged.
import * as grpc from '@grpc/grpc-js';
import { expect } from 'vitest';
import { targetOf } from './mesh-files.ts';
import { waitFor } from './wait.ts';
import type { XdsClient } from './xds-client.ts';

export const RATINGS = targetOf('ratings');

/** ratings v1 on 127.0.0.1:`port`, running as `serviceAccount`. */
export function ratingsEntry(port: number, serviceAccount = 'ratings'): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${port} }, labels: { app: ratings, version: v1 }, serviceAccount: ${serviceAccount} }]
`;
}

export const peerAuth = (mode: string) => `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: ratings, namespace: default }\nspec: { selector: { matchLabels: { app: ratings } }, mtls: { mode: ${mode} } }\n`;
export const ISTIO_MUTUAL = `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: ratings, namespace: default }\nspec: { host: ratings, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }\n`;
export const ONLY_PRODUCTPAGE = `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ratings-callers, namespace: default }\nspec:\n  selector: { matchLabels: { app: ratings } }\n  rules: [{ from: [{ source: { principals: [cluster.local/ns/default/sa/productpage] } }] }]\n`;

/** One call to ratings: 'ok', or the gRPC status name it failed with. */
export async function outcome(client: XdsClient, deadlineMs = 3000): Promise<string> {
  try {
    const reply = await client.call(RATINGS, {}, deadlineMs);
    return reply.service === 'ratings' ? 'ok' : `wrong service ${reply.service}`;
  } catch (err) {
    const code = (err as grpc.ServiceError).code;
    return typeof code === 'number' ? grpc.status[code] : String(err);
  }
}

/** Waits until `client` gets `want` on 5 calls in a row, then checks 20 more calls all do. */
export async function settlesOn(client: XdsClient, want: string, what: string): Promise<void> {
  await waitFor(
    async () => {
      const last = await Promise.all(Array.from({ length: 5 }, () => outcome(client)));
      return last.every((o) => o === want);
    },
    { timeoutMs: 20_000, intervalMs: 100, description: `${what} (${want} on 5 calls in a row)` },
  );
  expect(await Promise.all(Array.from({ length: 20 }, () => outcome(client)))).toEqual(Array(20).fill(want));
}
