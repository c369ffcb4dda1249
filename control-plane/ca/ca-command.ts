// `meshpilot ca status|rotate|activate`: the operator's view of the mesh CA and its root rotation,
// through a running control plane's admin API (which accepts CA changes from loopback only).
import { Command, Option } from 'commander';
import { adminBase } from '../observe/admin-url.ts';

interface RootRow {
  subject: string;
  serial: string;
  signing: boolean;
  notAfter: string;
  keepUntil?: string;
  staged?: boolean;
  activateAt?: string;
}

async function call(admin: string, method: 'GET' | 'POST', path: string, body?: object): Promise<Record<string, unknown>> {
  const res = await fetch(`${adminBase(admin)}${path}`, {
    method,
    ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${String(json.error ?? res.statusText)}`);
  return json;
}

function printRoots(report: Record<string, unknown>): void {
  const roots = (report.roots ?? []) as RootRow[];
  for (const r of roots) {
    const state = r.signing ? 'signing' : r.staged ? `staged, signs from ${r.activateAt}` : `retired, trusted until ${r.keepUntil}`;
    console.log(`${r.serial}  ${state}  (${r.subject}, expires ${r.notAfter})`);
  }
}

async function run(fn: () => Promise<void>, cmd: Command): Promise<void> {
  try {
    await fn();
  } catch (e) {
    cmd.error(`error: ${(e as Error).message}`);
  }
}

export function caCommand(): Command {
  const ca = new Command('ca').description('the mesh CA of a running control plane: roots and their rotation');
  const admin = () => new Option('--admin <url>', 'admin API, e.g. http://127.0.0.1:15014').makeOptionMandatory();
  ca.command('status')
    .description('the trusted roots: which signs, which is staged, until when retired ones are kept')
    .addOption(admin())
    .action(async (o: { admin: string }, cmd: Command) => run(async () => printRoots(await call(o.admin, 'GET', '/debug/certs')), cmd));
  ca.command('rotate')
    .description('stage a new root: trusted at once (workloads pick it up when they renew), signing after --activate-in (default: the longest workload certificate lifetime)')
    .addOption(admin())
    .option('--activate-in <duration>', 'when the new root starts signing, e.g. 12h')
    .option('--now', 'sign with the new root at once (a compromised root): workloads that have not renewed since distrust new certificates until they do')
    .action(async (o: { admin: string; activateIn?: string; now?: boolean }, cmd: Command) =>
      run(async () => {
        if (o.now && o.activateIn) throw new Error('give --activate-in or --now, not both');
        const r = await call(o.admin, 'POST', '/debug/ca/rotate', { ...(o.activateIn ? { activateIn: o.activateIn } : {}), ...(o.now ? { now: true } : {}) });
        const staged = r.staged as { serial: string; activateAt: string };
        console.log(o.now ? `new root ${staged.serial} signs now` : `new root ${staged.serial} staged: in the trust bundle now, signing from ${staged.activateAt}`);
        printRoots(r);
      }, cmd),
    );
  ca.command('activate')
    .description('make the staged root sign now, before its time')
    .addOption(admin())
    .action(async (o: { admin: string }, cmd: Command) =>
      run(async () => {
        const r = await call(o.admin, 'POST', '/debug/ca/activate');
        console.log('staged root activated');
        printRoots(r);
      }, cmd),
    );
  return ca;
}
