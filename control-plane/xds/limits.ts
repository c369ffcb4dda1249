// What one xDS client may cost the server: names per request and per stream, message size,
// streams per connection and in all, how long a connection may sit without a stream (a client
// that never completes the HTTP/2 handshake), and how many log lines one stream may cause.
import * as grpc from '@grpc/grpc-js';

export interface XdsLimits {
  /** Resource names in one request (SotW resource_names; delta subscribe + unsubscribe, or initial versions). */
  maxNamesPerRequest: number;
  /** Names one stream may be subscribed to, per type. */
  maxNamesPerStream: number;
  /** Largest request message accepted (grpc.max_receive_message_length). */
  maxMessageBytes: number;
  /** Concurrent streams on one HTTP/2 connection (grpc.max_concurrent_streams). */
  maxStreamsPerConnection: number;
  /** Open ADS streams in all; past it new streams end at once with RESOURCE_EXHAUSTED. */
  maxStreams: number;
  /**
   * A connection with no open stream for this long is closed (grpc.max_connection_idle_ms). This is
   * also what closes a connection that never completes the HTTP/2 preface: grpc-js starts the idle
   * timer when the socket is accepted, and a connection without a stream serves no xDS client.
   */
  idleConnectionMs: number;
  /** A stream that sends no request for this long after it opens is ended (DEADLINE_EXCEEDED). */
  firstRequestMs: number;
  /** Log lines per stream for each kind of repeated event (unknown type, NACK) before they are summarized. */
  logEventsPerStream: number;
  /** At most one summary line per stream and kind of event this often, with the count suppressed. */
  logSummaryMs: number;
}

export const DEFAULT_XDS_LIMITS: XdsLimits = {
  maxNamesPerRequest: 10_000,
  maxNamesPerStream: 10_000,
  maxMessageBytes: 4 * 1024 * 1024,
  maxStreamsPerConnection: 100,
  maxStreams: 20_000,
  idleConnectionMs: 10_000,
  firstRequestMs: 10_000,
  logEventsPerStream: 5,
  logSummaryMs: 60_000,
};

export function xdsLimits(overrides: Partial<XdsLimits> = {}): XdsLimits {
  const out = { ...DEFAULT_XDS_LIMITS };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) out[k as keyof XdsLimits] = v;
  return out;
}

/** grpc-js server options that enforce the transport limits. */
export function grpcServerOptions(l: XdsLimits): grpc.ServerOptions {
  return {
    'grpc.keepalive_permit_without_calls': 1,
    // channelz stays on: with 'grpc.enable_channelz': 0, grpc-js 1.14's forceShutdown() left
    // connections open (a restarted control plane's clients stayed on the dead server's streams).
    'grpc.max_receive_message_length': l.maxMessageBytes,
    'grpc.max_concurrent_streams': l.maxStreamsPerConnection,
    'grpc.max_connection_idle_ms': l.idleConnectionMs,
  };
}

/** A client went over a limit: its stream is ended with this status. */
export class LimitError extends Error {
  readonly code = grpc.status.RESOURCE_EXHAUSTED;
}

/** Throws a LimitError naming the limit when `count` is over it. */
export function checkLimit(count: number, limit: number, what: string, option: keyof XdsLimits): void {
  if (count > limit) throw new LimitError(`${what}: ${count}, over the limit of ${limit} (${option})`);
}
