// POST /debug/ca/rotate and /debug/ca/activate: the operator's handles on a root rotation.
// Rotation is two-phase (authority.ts stageRoot): the new root joins the trust bundle first and
// signs later, so every workload trusts it before anyone presents a certificate from it.
// These change the CA, so they answer only callers on this machine (kubectl port-forward and
// exec arrive from loopback), whatever address the admin API listens on.
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Authority } from '../ca/authority.ts';
import { parseDuration } from '../config/schemas/common.ts';
import { certsReport } from './certs.ts';

function fromLoopback(req: Request): boolean {
  const a = req.socket.remoteAddress ?? '';
  return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

type Body = { activateIn?: unknown; now?: unknown };

/** When the staged root should start signing, from the body; undefined: the CA's default. */
function activateAt(body: Body, now: number): Date | undefined | { error: string } {
  if (body.now !== undefined && typeof body.now !== 'boolean') return { error: 'now: expected true or false' };
  if (body.now && body.activateIn !== undefined) return { error: 'give activateIn or now, not both' };
  if (body.now) return new Date(now);
  if (body.activateIn === undefined) return undefined;
  if (typeof body.activateIn !== 'string') return { error: 'activateIn: expected a duration such as "30m" or "24h"' };
  const d = parseDuration(body.activateIn);
  if ('error' in d) return { error: `activateIn: ${d.error}` };
  return new Date(now + d.ms);
}

export function caRotateHandlers(ca: Authority | undefined, logger: Logger | undefined) {
  const guard = (req: Request, res: Response): boolean => {
    if (!ca) res.status(404).json({ error: 'no mesh CA: meshpilot serves certificates only with --xds-tls' });
    else if (!fromLoopback(req)) res.status(403).json({ error: 'CA changes are accepted from loopback only (use kubectl port-forward or exec)' });
    else return true;
    return false;
  };
  return {
    rotate: async (req: Request, res: Response) => {
      if (!guard(req, res)) return;
      const at = activateAt((req.body ?? {}) as Body, Date.now());
      if (at && 'error' in at) return void res.status(400).json({ error: at.error });
      try {
        const staged = await ca!.stageRoot(at);
        if (at && at.getTime() <= Date.now()) await ca!.activateRoot();
        logger?.warn({ serial: staged.serial, activateAt: staged.activateAt?.toISOString(), immediate: at !== undefined && at.getTime() <= Date.now() }, 'CA: root rotation started');
        res.json({ staged: { serial: staged.serial, subject: staged.subject, activateAt: staged.activateAt?.toISOString() }, ...certsReport(ca!) });
      } catch (e) {
        res.status(409).json({ error: (e as Error).message });
      }
    },
    activate: async (req: Request, res: Response) => {
      if (!guard(req, res)) return;
      try {
        await ca!.activateRoot();
        logger?.warn({ serial: ca!.roots()[0]!.serialNumber }, 'CA: staged root activated by the operator');
        res.json(certsReport(ca!));
      } catch (e) {
        res.status(409).json({ error: (e as Error).message });
      }
    },
  };
}
