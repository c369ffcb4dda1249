// connectionPool -> circuit breaker thresholds. Unset limits are "unlimited" (as Istio sets them)
// rather than Envoy's defaults of 1024 requests and 3 concurrent retries, which surprise people.
import type { ConnectionPool } from '../model/types.ts';
import type { Json } from '../json.ts';

const UNLIMITED = 4294967295;

export function circuitBreakers(cp: ConnectionPool | undefined): Json {
  return {
    circuit_breakers: {
      thresholds: [
        {
          max_connections: cp?.maxConnections ?? UNLIMITED,
          max_pending_requests: cp?.maxPendingRequests ?? UNLIMITED,
          max_requests: cp?.maxRequests ?? UNLIMITED,
          max_retries: cp?.maxRetries ?? UNLIMITED,
          track_remaining: true,
        },
      ],
    },
  };
}
