// Upstream HTTP options: HTTP/2 for gRPC and HTTP2 ports (and HTTP ports whose rule says
// h2UpgradePolicy UPGRADE), HTTP/2 keepalive PINGs, and the connectionPool's per-connection limits.
// Sidecars only; gRPC clients always speak HTTP/2 and have no such settings.
import { protoDuration } from './proto-values.ts';
import type { ConnectionPool, Protocol } from '../model/types.ts';
import type { Json } from '../json.ts';
import { HTTP_PROTOCOL_OPTIONS } from './type-urls.ts';

export function upstreamProtocolOptions(protocol: Protocol, cp: ConnectionPool | undefined): Json {
  const h2 = protocol === 'GRPC' || protocol === 'HTTP2' || (protocol === 'HTTP' && cp?.h2Upgrade === true);
  const common = {
    ...(cp?.idleTimeoutMs ? { idle_timeout: protoDuration(cp.idleTimeoutMs) } : {}),
    ...(cp?.maxRequestsPerConnection ? { max_requests_per_connection: cp.maxRequestsPerConnection } : {}),
  };
  if (!h2 && Object.keys(common).length === 0) return {};
  return {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': HTTP_PROTOCOL_OPTIONS,
        ...(Object.keys(common).length ? { common_http_protocol_options: common } : {}),
        explicit_http_config: h2
          ? { http2_protocol_options: http2Options(cp) }
          : { http_protocol_options: {} },
      },
    },
  };
}

function http2Options(cp: ConnectionPool | undefined): Json {
  const k = cp?.http2KeepAlive;
  return {
    ...(cp?.maxConcurrentStreams ? { max_concurrent_streams: cp.maxConcurrentStreams } : {}),
    ...(k ? { connection_keepalive: { ...(k.intervalMs !== undefined ? { interval: protoDuration(k.intervalMs) } : {}), timeout: protoDuration(k.timeoutMs) } } : {}),
  };
}
