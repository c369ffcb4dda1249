// Admin API (JSON over HTTP): health, readiness, connected proxies, rule status and explain; and the
// dashboard (dashboard/routes.ts: its page, state and event stream, the only answers that are not JSON).
// Every answer is JSON, errors included: a bad body is a 4xx naming the problem, an unexpected
// failure a 500 with its message, never express's HTML page with a stack trace.
// The monitoring app (`serve --monitoring-listen`) serves only the probes and the metrics, with the
// same handlers, so they can be published beyond the pod while the admin API stays on loopback.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { explainHandler } from '../explain/admin-route.ts';
import { configDump } from './config-dump.ts';
import { coreComponents } from './core-health.ts';
import { Health } from './health.ts';
import type { Metrics } from './metrics.ts';
import type { MeshState } from '../model/compile.ts';
import { parseSelector, type ProxyStatus } from './proxy-status.ts';
import { proxiesReport, rulesReport } from './reports.ts';
import type { AdsServer } from '../xds/ads-server.ts';
import type { SnapshotCache } from '../xds/snapshot-cache.ts';
import type { Authority } from '../ca/authority.ts';
import { certsReport } from './certs.ts';
import { caRotateHandlers } from './ca-rotate.ts';
import { addLoadRoute } from '../load/load-route.ts';
import type { LoadWindow } from '../load/load-window.ts';
import { addRolloutRoutes, type RolloutAdmin } from './rollout-routes.ts';
import { addDashboardRoutes } from '../dashboard/routes.ts';
import type { DashboardEvents } from '../dashboard/events.ts';
import { allowedHosts } from './admin-host.ts';

interface AdminDeps {
  state: () => MeshState;
  ads: AdsServer;
  cache: SnapshotCache;
  /** Component checks for /healthz and /readyz (default: the model and the xDS server only). */
  health?: Health;
  /** Served at GET /metrics when given. */
  metrics?: Metrics;
  /** Where unexpected errors (the 500s) are logged, with their stack. */
  logger?: Logger;
  /** The mesh CA, for GET /debug/certs. */
  ca?: Authority;
  /** Reported load, for GET /debug/load. */
  load?: LoadWindow;
  /** Canaries and fault experiments (rollout/controller.ts), for /debug/canaries and /debug/experiments. */
  rollouts?: RolloutAdmin;
  /** The dashboard (GET /, /dashboard/...): whether it offers canary actions, its event streams (closed on stop), its page's folder. */
  dashboard?: { actions?: boolean; events?: DashboardEvents; publicDir?: string };
  /** Host names answered besides IP addresses and localhost (`serve --admin-host`): see admin-host.ts. */
  hosts?: string[];
}

/** Request bodies (POST /debug/explain, /debug/ca/rotate) are small JSON documents. */
export const ADMIN_MAX_BODY_BYTES = 64 * 1024;

// Checked before the body is read, so a body that is not JSON, and not said to be, is a 415.
function requireJson(req: Request, res: Response, next: NextFunction): void {
  if (req.is('application/json')) next();
  else res.status(415).json({ error: 'expected Content-Type: application/json' });
}

/**
 * A page of another origin open in the operator's browser can send a form POST to a loopback
 * address (no preflight): refuse any POST a browser marks as coming from elsewhere, so only the
 * dashboard itself (same origin) and non-browser clients (the CLI sends no Origin) can act.
 */
function sameOriginPosts(req: Request, res: Response, next: NextFunction): void {
  if (req.method !== 'POST') return next();
  const origin = req.headers.origin;
  const site = req.headers['sec-fetch-site'];
  const foreign = (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) || (site !== undefined && site !== 'same-origin' && site !== 'none');
  if (foreign) res.status(403).json({ error: `refused: a POST from another origin (${origin ?? site}); the admin API acts only for its own dashboard and non-browser clients` });
  else next();
}

export function createAdminApp({ state, ads, cache, health, metrics, logger, ca, load, rollouts, dashboard, hosts }: AdminDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(allowedHosts(hosts));
  app.use(sameOriginPosts);
  if (!health) {
    health = new Health();
    for (const c of coreComponents(cache, ads, state)) health.add(c);
  }
  addProbeRoutes(app, health, metrics);
  app.get('/debug/proxies', (req, res) => {
    let match: (p: ProxyStatus) => boolean = () => true;
    try {
      const selector = typeof req.query.selector === 'string' ? parseSelector(req.query.selector) : undefined;
      const id = typeof req.query.proxy === 'string' ? req.query.proxy : undefined;
      match = (p) => (!selector || selector(p.labels)) && (id === undefined || p.id === id);
    } catch (e) {
      res.status(400).json({ error: (e as Error).message });
      return;
    }
    res.json(proxiesReport(ads, cache, match));
  });
  app.get('/debug/config_dump', (req, res) => {
    const id = req.query.proxy;
    if (typeof id !== 'string' || id === '') {
      res.status(400).json({ error: 'give the proxy: /debug/config_dump?proxy=<node id> (ids are listed by /debug/proxies)' });
      return;
    }
    // A proxy reconnecting may briefly hold two streams: the newest is the one that counts.
    const stream = [...ads.streams].filter((s) => s.proxy?.id === id).sort((a, b) => b.connectedAt.getTime() - a.connectedAt.getTime())[0];
    if (!stream) {
      res.status(404).json({ error: `no connected proxy has id "${id}" (connected proxies are listed by /debug/proxies)` });
      return;
    }
    res.json(configDump(stream, cache.generation));
  });
  app.get('/debug/rules', (_req, res) => {
    res.json(rulesReport(state(), cache, rollouts));
  });
  app.get('/debug/certs', (_req, res) => {
    if (!ca) res.status(404).json({ error: 'no mesh CA: meshpilot serves certificates only with --xds-tls' });
    else res.json(certsReport(ca));
  });
  const rotation = caRotateHandlers(ca, logger);
  // The body is optional: an empty POST stages with the CA's default timing.
  app.post('/debug/ca/rotate', express.json({ limit: ADMIN_MAX_BODY_BYTES }), (req, res, next) => void rotation.rotate(req, res).catch(next));
  app.post('/debug/ca/activate', (req, res, next) => void rotation.activate(req, res).catch(next));
  app.post('/debug/explain', requireJson, express.json({ limit: ADMIN_MAX_BODY_BYTES }), explainHandler(state, () => [...ads.streams].flatMap((s) => (s.proxy ? [s.proxy] : []))));
  if (load) addLoadRoute(app, load, () => state()?.model.clusters);
  if (rollouts) addRolloutRoutes(app, rollouts);
  addDashboardRoutes(app, { ...dashboard, state, ads, cache, ...(load ? { load } : {}), ...(rollouts ? { rollouts } : {}) });
  addJsonFallbacks(app, logger);
  return app;
}

interface MonitoringDeps {
  /** The same component checks as the admin API's /healthz and /readyz. */
  health: Health;
  /** Served at GET /metrics when given. */
  metrics?: Metrics;
  logger?: Logger;
}

/**
 * GET /healthz, /readyz and /metrics only (the admin API's handlers); anything else is the admin
 * API's JSON 404. Nothing here shows rules, proxies or certificates, so it may listen beyond the pod.
 */
export function createMonitoringApp({ health, metrics, logger }: MonitoringDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  addProbeRoutes(app, health, metrics);
  addJsonFallbacks(app, logger);
  return app;
}

/** The probes (and /metrics with `metrics`): the same answers on the admin and monitoring listeners. */
function addProbeRoutes(app: express.Express, checks: Health, metrics: Metrics | undefined): void {
  // Both probes list each component with its status, so a failure names the failing part.
  app.get('/healthz', (_req, res) => {
    const r = checks.report('live');
    const status = !r.ok ? `failing: ${r.failing.join(', ')}` : r.degraded.length ? 'degraded' : 'ok';
    res.status(r.ok ? 200 : 503).json({ status, components: r.components });
  });
  app.get('/readyz', (_req, res) => {
    const r = checks.report('ready');
    res.status(r.ok ? 200 : 503).json({ ready: r.ok, ...(r.ok ? {} : { failing: r.failing }), components: r.components });
  });
  if (metrics) {
    app.get('/metrics', async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.text());
    });
  }
}

/** A JSON 404 for any other endpoint, and JSON errors (never express's HTML page). */
function addJsonFallbacks(app: express.Express, logger: Logger | undefined): void {
  app.use((req, res) => {
    res.status(404).json({ error: `no such endpoint: ${req.method} ${req.path}` });
  });
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    // Too late for a JSON answer; express's own handler closes the connection.
    if (res.headersSent) return next(err);
    const { status, error } = errorAnswer(err);
    if (status >= 500) logger?.error({ err }, 'admin request failed');
    res.status(status).json({ error });
  });
}

/** The status and the message for an error: the body parser's 4xx in words, anything else a 500. */
function errorAnswer(err: unknown): { status: number; error: string } {
  const e = (err ?? {}) as { type?: string; status?: number; expose?: boolean; message?: string };
  if (e.type === 'entity.too.large') return { status: 413, error: `request body larger than ${ADMIN_MAX_BODY_BYTES} bytes` };
  if (e.type === 'entity.parse.failed') return { status: 400, error: `body is not JSON (${e.message})` };
  // Other client errors from the body parser (e.g. an unsupported charset) say what is wrong.
  if (e.status && e.status >= 400 && e.status < 500 && e.expose) return { status: e.status, error: e.message ?? 'bad request' };
  return { status: 500, error: `internal error: ${err instanceof Error ? err.message : String(err)}` };
}
