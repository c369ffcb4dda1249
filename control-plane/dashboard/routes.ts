// The dashboard on the admin server: the page (GET / and the files of public/ under /dashboard/),
// its data (GET /dashboard/api/state) and its live updates (GET /dashboard/events, SSE). Read-only:
// the page's canary buttons POST to the admin API's own routes, and are offered only with
// `serve --dashboard-actions` (`actions` in the state).
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type express from 'express';
import type { Response } from 'express';
import { DashboardEvents } from './events.ts';
import { dashboardState, type DashboardDeps } from './state.ts';

/** The page's files: the same folder from control-plane/dashboard/ (sources) and dist/dashboard/ (the build, the image). */
export const PUBLIC_DIR = fileURLToPath(new URL('../../control-plane/dashboard/public/', import.meta.url));

/** Files served, by extension; anything else is a 404. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** A path segment of a served file: no dot files, no `..`, no separators of any kind. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export interface DashboardRouteDeps extends DashboardDeps {
  /** The event streams; the control plane closes them on stop (default: a new one). */
  events?: DashboardEvents;
  /** The page's folder (default PUBLIC_DIR). */
  publicDir?: string;
}

/** Adds the dashboard's routes to the admin app; returns its event streams. */
export function addDashboardRoutes(app: express.Express, deps: DashboardRouteDeps): DashboardEvents {
  const events = deps.events ?? new DashboardEvents();
  const root = deps.publicDir ?? PUBLIC_DIR;
  const snapshot = () => JSON.stringify(dashboardState(deps));
  app.get('/', (_req, res, next) => void sendFile(root, ['index.html'], res).then((sent) => (sent ? undefined : next()), next));
  app.get('/dashboard/api/state', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('application/json').send(snapshot());
  });
  app.get('/dashboard/events', (req, res) => {
    events.open(req, res, snapshot(), snapshot);
  });
  app.get('/dashboard/*file', (req, res, next) => {
    const file = (req.params as { file: string[] }).file;
    void sendFile(root, file, res).then((sent) => (sent ? undefined : next()), next);
  });
  return events;
}

/**
 * Sends root/segments when it is a regular file of a served type inside root (symbolic links
 * followed, and refused when they lead out). false: not served (the admin app's JSON 404 follows).
 */
async function sendFile(root: string, segments: string[], res: Response): Promise<boolean> {
  const type = TYPES[path.extname(segments.at(-1) ?? '').toLowerCase()];
  if (!type || segments.length === 0 || !segments.every((s) => SEGMENT.test(s))) return false;
  let real: string;
  try {
    const base = await realpath(root);
    real = await realpath(path.join(base, ...segments));
    if (!real.startsWith(base + path.sep) || !(await stat(real)).isFile()) return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw e;
  }
  const body = await readFile(real);
  res.status(200).set({ 'Content-Type': type, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' }).send(body);
  return true;
}
