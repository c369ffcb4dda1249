// `meshpilot experiment start|stop|list`: start writes a FaultExperiment rule (a config directory
// file, or YAML for kubectl); stop and list go through a running control plane's admin API.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AdminError, adminCall, adminOption, adminTarget, type AdminTarget } from '../observe/admin-client.ts';
import { parseDuration } from '../observe/wait.ts';
import { experimentTable, parseRef, shortKey, type ExperimentView } from './admin-views.ts';
import { run } from './canary-command.ts';
import type { ExperimentFlags } from './experiment-rule.ts';

const collect = (v: string, prev: string[]) => [...prev, v];

function forArg(text: string): number {
  try {
    const ms = parseDuration(text);
    if (ms <= 0) throw new Error('must be longer than 0');
    return ms;
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

interface StartFlags extends Omit<ExperimentFlags, 'name' | 'forMs'> {
  for: number;
  configDir?: string;
  output?: 'yaml';
}

export function experimentCommand(): Command {
  const experiment = new Command('experiment').description('time-boxed fault experiments: write one (start), end one early (stop), list them');
  experiment
    .command('start')
    .description('write a FaultExperiment rule: inject an abort or a delay into a share of a host\'s requests until --for has passed (or its guard trips)')
    .argument('<name>', 'the experiment\'s name (metadata.name)')
    .requiredOption('--host <host>', 'the VirtualService host whose requests get the fault, e.g. ratings (a short name is in --namespace)')
    .option('--route <name>', 'only this http route of the host (http[].name; repeatable); every route of the host when left out', collect, [])
    .option('--abort-http <status>', 'abort with this HTTP status, e.g. 503 (gRPC clients see its gRPC mapping: 503 -> UNAVAILABLE)')
    .option('--abort-grpc <status>', 'abort with this gRPC status, by code or name: 14 or UNAVAILABLE')
    .option('--delay <duration>', 'delay requests by this long, e.g. 2s (with or without an abort)')
    .requiredOption('--percent <p>', 'share of the requests that get the fault, 0-100 (decimals allowed)')
    .requiredOption('--for <duration>', 'how long it runs: the rule\'s expiresAt is now + this, e.g. 10m', forArg)
    .option('--guard-min-success <percent>', 'stop early when the service\'s success rate falls below this')
    .option('--guard-min-requests <n>', 'requests in the guard\'s window below which it does not judge')
    .option('--guard-window <duration>', 'the span the guard judges, e.g. 30s')
    .option('--namespace <ns>', 'the experiment\'s namespace (and the one a short --host is in)', 'default')
    .option('--config-dir <dir>', 'write it to DIR/experiment-NAME.yaml (serve --config-dir DIR picks it up)')
    .addOption(new Option('-o, --output <format>', 'print it instead (e.g. | kubectl apply -f -)').choices(['yaml']))
    .action(async (name: string, o: StartFlags, cmd: Command) => run(cmd, () => start(name, o)));
  experiment
    .command('stop')
    .description('end a running experiment now (its rule stays, with phase Stopped: delete it when done)')
    .argument('<experiment>', 'NAMESPACE/NAME (a bare NAME is in namespace default)')
    .addOption(adminOption())
    .action(async (ref: string, _o: unknown, cmd: Command) =>
      run(cmd, async () => {
        const target = adminTarget(cmd);
        const { namespace, name } = parseRef(ref);
        const answer = await stopExperiment(target, namespace, name);
        console.log(`stopped ${namespace}/${name}${answer?.reason ? `: ${answer.reason}` : ''} (the rule stays in place with phase Stopped; delete it when done)`);
      }),
    );
  experiment
    .command('list')
    .description('one line per fault experiment: host, routes, phase, when it expires, why it stopped')
    .addOption(adminOption())
    .addOption(new Option('-o, --output <format>', 'table or json (the admin API\'s answer)').choices(['table', 'json']).default('table'))
    .action(async (o: { output: 'table' | 'json' }, cmd: Command) =>
      run(cmd, async () => {
        const target = adminTarget(cmd);
        const list = await listExperiments(target);
        if (o.output === 'json') console.log(JSON.stringify(list, null, 2));
        else console.log(list.length ? experimentTable(list, Date.now()) : `no fault experiments (${target.url})`);
      }),
    );
  return experiment;
}

async function listExperiments(target: AdminTarget): Promise<ExperimentView[]> {
  try {
    return await adminCall<ExperimentView[]>(target, 'GET', '/debug/experiments');
  } catch (e) {
    if (e instanceof AdminError && e.status === 404) throw new Error(`${target.url} has no /debug/experiments: this control plane does not run fault experiments (an older meshpilot?)`);
    throw e;
  }
}

async function stopExperiment(target: AdminTarget, namespace: string, name: string): Promise<ExperimentView | undefined> {
  try {
    const answer = await adminCall<{ experiment?: ExperimentView } | ExperimentView | undefined>(target, 'POST', `/debug/experiments/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/stop`);
    return answer && 'experiment' in answer ? answer.experiment : (answer as ExperimentView | undefined);
  } catch (e) {
    if (!(e instanceof AdminError) || e.status === undefined) throw e;
    if (e.status === 404) {
      const known = await listExperiments(target);
      throw new Error(`no fault experiment ${namespace}/${name} (known: ${known.map((x) => shortKey(x.key)).join(', ') || 'none'})`);
    }
    if (e.status === 409) throw new Error(`stop ${namespace}/${name} refused: ${e.message}`);
    throw new Error(`stop ${namespace}/${name}: ${e.message}`);
  }
}

async function start(name: string, o: StartFlags): Promise<void> {
  if (!o.configDir === !o.output) throw new Error('say where the rule goes: --config-dir DIR (a file serve reads) or -o yaml (printed, e.g. for kubectl apply -f -)');
  if (o.configDir && !(existsSync(o.configDir) && statSync(o.configDir).isDirectory())) throw new Error(`--config-dir ${o.configDir}: no such directory`);
  const [{ experimentDocument, experimentFile, flagError, writeAtomically }, { Document, isScalar }, { parseConfigFile }] = await Promise.all([
    import('./experiment-rule.ts'),
    import('yaml'),
    import('../config/load.ts'),
  ]);
  const now = Date.now();
  const doc = experimentDocument({ ...o, name, forMs: o.for }, now);
  const spec = doc.spec as { expiresAt: string };
  const header = [
    `# Fault experiment written by \`meshpilot experiment start\` at ${new Date(now).toISOString()}.`,
    `# It stops by itself at expiresAt; to end it early: meshpilot experiment stop ${o.namespace}/${name}`,
  ];
  const yaml = new Document(doc);
  // Quoted, so that no YAML reader takes it for a timestamp value instead of the string the schema wants.
  const expiresAt = yaml.getIn(['spec', 'expiresAt'], true);
  if (isScalar(expiresAt)) expiresAt.type = 'QUOTE_DOUBLE';
  const text = `${header.join('\n')}\n${yaml.toString({ lineWidth: 0 })}`;
  const file = o.configDir ? experimentFile(o.configDir, name) : `experiment-${name}.yaml`;

  // The same validation serve gives the file; errors in the words of the flags.
  const parsed = parseConfigFile(file, text);
  const errors = [...parsed.syntaxErrors, ...parsed.documents.flatMap((d) => d.errors)];
  if (errors.length) throw new Error(`the experiment is not valid:\n${errors.map((e) => `  ${flagError(e)}`).join('\n')}`);
  const object = parsed.documents[0]?.object;
  if (!object) throw new Error('the experiment is not valid: no object came of it');

  if (o.configDir) {
    await checkWithRules(o.configDir, file, object);
    const replaced = existsSync(file);
    writeAtomically(file, text);
    console.log(`${replaced ? 'replaced' : 'wrote'} ${file}: ${object.key.replace('/', ' ')} runs until ${spec.expiresAt}`);
  } else {
    process.stdout.write(text);
  }
}

/**
 * With a config directory: the experiment among the directory's rules, compiled as serve would,
 * so a host or route that does not exist is refused before the file is written.
 */
async function checkWithRules(dir: string, file: string, object: import('../config/types.ts').ConfigObject): Promise<void> {
  const [{ loadDirectory }, { compile, formatIssue }] = await Promise.all([import('../config/load.ts'), import('../model/compile.ts')]);
  const load = loadDirectory(dir);
  const elsewhere = load.objects.find((x) => x.key === object.key && path.resolve(x.source.file) !== path.resolve(file));
  if (elsewhere) throw new Error(`${object.key.replace('/', ' ')} is already declared at ${elsewhere.source.file}:${elsewhere.source.line}; change it there, or give this experiment another name`);
  const state = compile({ ...load, objects: [...load.objects.filter((x) => x.key !== object.key), object] });
  const mine = (e: { key?: string; kind?: string; namespace?: string; name?: string }) => ('key' in e && e.key ? e.key : `${e.kind}/${e.namespace ?? 'default'}/${e.name}`) === object.key;
  const errors = state.errors.filter(mine);
  if (errors.length) throw new Error(`the experiment does not fit the rules in ${dir}:\n${errors.map((e) => `  ${e.message}${e.path ? ` (${e.path})` : ''}`).join('\n')}`);
  for (const w of state.warnings.filter(mine)) console.error(`warning: ${formatIssue(w)}`);
}
