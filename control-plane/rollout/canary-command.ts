// `meshpilot canary status|promote|pause|resume|abort`: a running control plane's canaries through
// its admin API (GET /debug/canaries, POST /debug/canaries/:ns/:name/:cmd).
import { Command, Option } from 'commander';
import { AdminError, adminCall, adminOption, adminTarget, type AdminTarget } from '../observe/admin-client.ts';
import { canaryTable, describeCanary, parseRef, shortKey, type CanaryView } from './admin-views.ts';
import type { CanaryCommand } from './types.ts';

const COMMANDS: Array<[CanaryCommand, string]> = [
  ['promote', 'go to 100% canary now and finish (as the Canary\'s finish says), skipping the remaining steps and checks'],
  ['pause', 'hold the current weight: no more checks or steps until resume'],
  ['resume', 'continue a paused canary from its current step'],
  ['abort', 'roll back now: 0% canary, the reason recorded as aborted by hand'],
];

const outputOption = () => new Option('-o, --output <format>', 'table (one line per canary) or json (the admin API\'s answer)').choices(['table', 'json']).default('table');

export function canaryCommand(): Command {
  const canary = new Command('canary').description('canaries of a running control plane (its admin API): state, promote, pause, resume, abort');
  canary
    .command('status')
    .description('one line per canary: host/route, phase, weight, step, failed checks, next check, reason')
    .argument('[canary]', 'NAMESPACE/NAME (a bare NAME is in namespace default); all canaries when left out')
    .addOption(adminOption())
    .addOption(outputOption())
    .action(async (ref: string | undefined, o: { output: 'table' | 'json' }, cmd: Command) =>
      run(cmd, async () => {
        const target = adminTarget(cmd);
        let list = await listCanaries(target);
        if (ref) {
          const { namespace, name } = parseRef(ref);
          const one = list.filter((c) => c.key === `Canary/${namespace}/${name}`);
          if (!one.length) throw new Error(unknownCanary(`${namespace}/${name}`, list));
          list = one;
        }
        if (o.output === 'json') return void console.log(JSON.stringify(list, null, 2));
        if (!list.length) return void console.log(`no canaries (${target.url})`);
        console.log(canaryTable(list, Date.now()));
        if (list.some((c) => !c.leader)) console.error('note: the replica that answered is not the leader; it shows the state the leader recorded, and commands must reach the leader');
      }),
    );
  for (const [name, description] of COMMANDS) {
    canary
      .command(name)
      .description(description)
      .argument('<canary>', 'NAMESPACE/NAME (a bare NAME is in namespace default)')
      .addOption(adminOption())
      .addOption(outputOption())
      .action(async (ref: string, o: { output: 'table' | 'json' }, cmd: Command) =>
        run(cmd, async () => {
          const after = await sendCommand(adminTarget(cmd), ref, name);
          console.log(o.output === 'json' ? JSON.stringify(after, null, 2) : describeCanary(after));
        }),
      );
  }
  return canary;
}

export async function listCanaries(target: AdminTarget): Promise<CanaryView[]> {
  try {
    return await adminCall<CanaryView[]>(target, 'GET', '/debug/canaries');
  } catch (e) {
    if (e instanceof AdminError && e.status === 404) throw new Error(`${target.url} has no /debug/canaries: this control plane does not run canaries (an older meshpilot?)`);
    throw e;
  }
}

/** POSTs one command; the canary as it is after it. A 404 is told apart: unknown canary, or no such API. */
export async function sendCommand(target: AdminTarget, ref: string, command: CanaryCommand): Promise<CanaryView> {
  const { namespace, name } = parseRef(ref);
  const path = `/debug/canaries/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/${command}`;
  let answer: { canary?: CanaryView } | CanaryView;
  try {
    answer = await adminCall<{ canary?: CanaryView } | CanaryView>(target, 'POST', path);
  } catch (e) {
    if (!(e instanceof AdminError) || e.status === undefined) throw e;
    if (e.status === 404) throw new Error(unknownCanary(`${namespace}/${name}`, await listCanaries(target)));
    if (e.status === 409) throw new Error(`${command} ${namespace}/${name} refused: ${e.message}`);
    throw new Error(`${command} ${namespace}/${name}: ${e.message}`);
  }
  // The route answers {canary}; a bare canary is taken too.
  const after = answer && 'canary' in answer && typeof answer.canary === 'object' ? answer.canary : (answer as CanaryView);
  if (!after || typeof after.key !== 'string') throw new Error(`${command} ${namespace}/${name}: the admin API's answer has no canary in it`);
  return after;
}

function unknownCanary(ref: string, list: CanaryView[]): string {
  return `no canary ${ref} (known: ${list.map((c) => shortKey(c.key)).join(', ') || 'none'})`;
}

/** Runs an action; any failure is one `error: ...` line on stderr and exit 1. */
export async function run(cmd: Command, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    cmd.error(`error: ${(e as Error).message}`);
  }
}
