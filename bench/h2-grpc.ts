// A lean gRPC client for bidirectional streams over node:http2: the gRPC wire protocol (POST,
// content-type application/grpc, te: trailers, 5-byte length-prefixed messages, grpc-status in the
// trailers) without grpc-js's interceptor, retry and channelz layers. The simulated proxies use it by
// default because at 10k streams the grpc-js client costs more CPU than the server under test, and
// the benchmark shares two cores between them (`--client grpc-js` switches back to grpc-js).
import http2 from 'node:http2';

export interface BidiStream {
  write(message: Buffer): void;
  cancel(): void;
}

export interface StreamHandlers {
  onMessage(message: Buffer): void;
  /** The stream ended: with the server's grpc-status (0 = OK), or a transport error. */
  onEnd(status: number, detail: string): void;
}

export class H2Channel {
  private readonly session: http2.ClientHttp2Session;
  private closed = false;

  constructor(address: string) {
    this.session = http2.connect(`http://${address}`, {
      // Room for an initial sync of 100 streams without waiting on WINDOW_UPDATEs (grpc-js and
      // Envoy also open large windows).
      settings: { initialWindowSize: 1 << 20, enablePush: false },
    });
    this.session.on('connect', () => this.session.setLocalWindowSize(32 << 20));
    this.session.on('error', () => {});
  }

  openStream(path: string, h: StreamHandlers): BidiStream {
    const req = this.session.request(
      { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' },
      { endStream: false },
    );
    let status = -1;
    let detail = '';
    let pending: Buffer | undefined;
    req.on('response', (headers) => {
      // Trailers-only responses carry grpc-status in the headers.
      if (headers['grpc-status'] !== undefined) {
        status = Number(headers['grpc-status']);
        detail = String(headers['grpc-message'] ?? '');
      }
    });
    req.on('trailers', (trailers) => {
      status = Number(trailers['grpc-status'] ?? 2);
      detail = String(trailers['grpc-message'] ?? '');
    });
    req.on('data', (chunk: Buffer) => {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = undefined;
      let off = 0;
      while (buf.length - off >= 5) {
        const len = buf.readUInt32BE(off + 1);
        if (buf.length - off - 5 < len) break;
        h.onMessage(buf.subarray(off + 5, off + 5 + len));
        off += 5 + len;
      }
      if (off < buf.length) pending = buf.subarray(off);
    });
    let ended = false;
    const end = (s: number, d: string) => {
      if (ended) return;
      ended = true;
      h.onEnd(s, d);
    };
    req.on('close', () => end(status < 0 ? 14 : status, detail || (status < 0 ? `stream closed (http2 code ${req.rstCode})` : '')));
    req.on('error', (e) => end(14, e.message));
    return {
      write(message: Buffer) {
        const frame = Buffer.allocUnsafe(5 + message.length);
        frame[0] = 0;
        frame.writeUInt32BE(message.length, 1);
        message.copy(frame, 5);
        req.write(frame);
      },
      cancel() {
        ended = true;
        if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.session.close();
    setTimeout(() => this.session.destroy(), 1000).unref();
  }
}
