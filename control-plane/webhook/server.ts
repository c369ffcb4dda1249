// The admission webhook: express over node:https, POST /inject. Bodies are size-capped; the
// certificate can be replaced while running (reloadCertificate, or by watching mounted files).
// onAdmission reports every answer's outcome and duration (for metrics) without knowing about them.
import type { AddressInfo } from 'node:net';
import https from 'node:https';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { answerReview, malformed, type AdmissionDeps, type AdmissionOutcome } from './admission.ts';
import { watchCertFiles, type ServingCert } from './serving-cert.ts';
import type { Registry } from 'prom-client';
import { listenOn } from '../listen-error.ts';

export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface WebhookServerOptions {
  host: string;
  port: number;
  cert: ServingCert;
  /** Watch these files and serve their contents when they change. */
  certFiles?: { cert: string; key: string };
  deps: AdmissionDeps;
  /** Larger bodies get 413 (default 3 MiB: an AdmissionReview carries one pod, at most ~1.5 MiB in etcd). */
  maxBodyBytes?: number;
  /**
   * Called once per POST /inject when the answer has been written: injected, skipped (allowed
   * unchanged), rejected (a 4xx, or allowed: false) or error (5xx), and the seconds it took.
   */
  onAdmission?: (outcome: AdmissionOutcome, seconds: number) => void;
  /** Served at GET /metrics (Prometheus text) when given. */
  metrics?: Registry;
  logger?: Logger;
}

export interface WebhookServer {
  host: string;
  port: number;
  /** https://host:port */
  url: string;
  /** Serve a new certificate to new connections; throws (and keeps the old one) if it is unusable. */
  reloadCertificate(cert: ServingCert): void;
  stop(): Promise<void>;
}

interface Locals {
  outcome?: AdmissionOutcome;
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const log = opts.logger;
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  const registry = opts.metrics;
  if (registry) {
    app.get('/metrics', async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    });
  }
  app.post(
    '/inject',
    (_req: Request, res: Response<unknown, Locals>, next: NextFunction) => {
      const start = process.hrtime.bigint();
      res.on('finish', () => {
        const outcome = res.locals.outcome ?? (res.statusCode >= 500 ? 'error' : 'rejected');
        opts.onAdmission?.(outcome, Number(process.hrtime.bigint() - start) / 1e9);
      });
      next();
    },
    // The content type is checked before the body is read: any other type is a 415, even when
    // the body is not JSON (which would otherwise be a 400 from the parser).
    (req: Request, res: Response<unknown, Locals>, next: NextFunction) => {
      if (req.is('application/json')) return next();
      res.locals.outcome = 'rejected';
      res.status(415).json({ error: 'expected Content-Type: application/json' });
    },
    express.json({ limit, strict: false }),
    async (req: Request, res: Response<unknown, Locals>) => {
      const answer = await answerReview(req.body, opts.deps);
      res.locals.outcome = answer.outcome;
      // Rejections block a user's pod, so they are worth a warning; the rest is routine.
      if (answer.outcome === 'error') log?.error({ reason: answer.message }, 'admission failed');
      else if (answer.outcome === 'rejected') log?.warn({ reason: answer.message }, 'admission rejected');
      else log?.debug({ outcome: answer.outcome, reason: answer.message }, 'admission');
      res.status(answer.status).json(answer.body);
    },
  );
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no such endpoint: ${req.method} ${req.path}` });
  });
  app.use((err: Error & { type?: string; status?: number }, _req: Request, res: Response<unknown, Locals>, _next: NextFunction) => {
    if (err.type === 'entity.too.large') {
      res.locals.outcome = 'rejected';
      res.status(413).json({ error: `request body larger than ${limit} bytes` });
    } else if (err.type === 'entity.parse.failed') {
      res.locals.outcome = 'rejected';
      res.status(400).json(malformed(`body is not JSON (${err.message})`).body);
    } else {
      res.locals.outcome = 'error';
      log?.error({ err }, 'webhook request failed');
      res.status(err.status && err.status < 500 ? err.status : 500).json({ error: err.message });
    }
  });

  const server = https.createServer({ cert: opts.cert.cert, key: opts.cert.key, minVersion: 'TLSv1.2' }, app);
  const reloadCertificate = (c: ServingCert) => {
    server.setSecureContext({ cert: c.cert, key: c.key, minVersion: 'TLSv1.2' });
    log?.info('webhook serving certificate reloaded');
  };
  const stopWatching = opts.certFiles
    ? watchCertFiles(opts.certFiles.cert, opts.certFiles.key, (c) => {
        try {
          reloadCertificate(c);
        } catch (e) {
          // A key and certificate that do not match yet (one file written, not the other): keep the old pair.
          log?.warn({ err: e }, 'new webhook certificate not usable yet; keeping the current one');
        }
      })
    : () => {};
  try {
    await listenOn(server, opts.port, opts.host);
  } catch (e) {
    stopWatching();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    host: addr.address,
    port: addr.port,
    url: `https://${hostForUrl}:${addr.port}`,
    reloadCertificate,
    stop: async () => {
      stopWatching();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
