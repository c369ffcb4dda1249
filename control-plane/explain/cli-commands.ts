// `meshpilot explain` and `meshpilot test`, as commander commands (kept here so cli.ts only adds them).
// What the actions use is imported when they run, so the rest of the command line starts without it.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { MeshState } from '../model/compile.ts';
import { parseLabels } from './request.ts';
import type { RunCounts } from './route-tests.ts';
import { MESH_CONFIG_FLAG, MESH_CONFIG_HELP, meshFromFlags, type MeshFlags } from '../mesh-option.ts';
import { STATE_DIR_FLAG, STATE_DIR_HELP } from '../rollout/state-dir-option.ts';

const collect = (v: string, prev: string[]) => [...prev, v];

function labelsArg(v: string): Record<string, string> {
  try {
    return parseLabels(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

async function load(dir: string, o: MeshFlags & { stateDir?: string }, cmd: Command): Promise<{ state: MeshState; formatIssue: typeof import('../model/compile.ts').formatIssue }> {
  const [{ loadDirectory }, { compile, formatIssue }] = await Promise.all([import('../config/load.ts'), import('../model/compile.ts')]);
  let mesh;
  try {
    mesh = await meshFromFlags(o, cmd, (line) => console.error(`warning: ${line}`));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  }
  const state = compile(loadDirectory(dir), [], undefined, mesh);
  if (!o.stateDir) return { state, formatIssue };
  // The model as served with that state directory: canary weights and running experiments' faults.
  const { loadRuntimeForCli } = await import('../rollout/cli-runtime.ts');
  try {
    return { state: { ...state, model: await loadRuntimeForCli(state.model, o.stateDir, (line) => console.error(`warning: ${line}`)) }, formatIssue };
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  }
}

/** The explain flags as commander gives them. */
interface ExplainFlags { configDir?: string; admin?: string; from?: string; kind: 'envoy' | 'grpc'; calleeKind?: 'envoy' | 'grpc'; namespace?: string; labels?: Record<string, string>; ip?: string; locality?: string; header: string[]; json?: boolean; meshConfig?: string; stateDir?: string }

/**
 * `explain --admin URL`: the running control plane answers (POST /debug/explain) from what it serves
 * now: its rules, endpoints (Kubernetes included), rollout state, CA, and the identity of a connected
 * proxy named by --from. Exit codes as for files: 2 for a request it cannot explain, 1 unreachable.
 */
async function explainRemote(request: string, o: ExplainFlags, cmd: Command): Promise<void> {
  const { adminCall, adminTarget, AdminError } = await import('../observe/admin-client.ts');
  const kindGiven = cmd.getOptionValueSource('kind') === 'cli';
  const body = {
    request,
    ...(o.from !== undefined ? { from: o.from } : {}),
    // Left out unless given: a connected proxy named by --from has its own kind.
    ...(kindGiven ? { kind: o.kind } : {}),
    ...(o.calleeKind ? { calleeKind: o.calleeKind } : {}),
    ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
    ...(o.labels ? { labels: o.labels } : {}),
    ...(o.ip !== undefined ? { ip: o.ip } : {}),
    ...(o.locality !== undefined ? { locality: o.locality } : {}),
    headers: o.header,
    text: !o.json,
  };
  try {
    const e = await adminCall<Record<string, unknown> & { text?: string }>(adminTarget(cmd), 'POST', '/debug/explain', 30_000, body);
    if (o.json) process.stdout.write(`${JSON.stringify(e, null, 2)}\n`);
    else process.stdout.write(String(e.text ?? ''));
  } catch (err) {
    if (!(err instanceof AdminError)) throw err;
    console.error(`error: ${err.message}`);
    process.exitCode = err.status === 400 ? 2 : 1;
  }
}

export function explainCommand(): Command {
  return new Command('explain')
    .description('why does a request go where it goes: evaluates the config generated for the caller, route by route (from rule files, or asking a running control plane with --admin)')
    .argument('<request>', "'METHOD URL', e.g. 'GET http://reviews:9080/reviews/1' or 'xds:///reviews:9080/pkg.Svc/Method'; a TCP connection 'tcp://10.96.0.20:5432' (a host or IP), a TLS one 'tls://api.example.com:443' (the host is the SNI)")
    .option('--config-dir <dir>', 'directory of .yaml/.yml rule files: explain the rules written there')
    .addOption(new Option('--admin <url>', `instead of --config-dir, ask a running control plane (its admin API, serve's --admin-listen): what it serves now (rules, endpoints, rollout state, certificates), and --from may name a connected proxy by its node id`).env('MESHPILOT_ADMIN'))
    .option('--from <caller>', 'node id (sidecar~ip~pod.ns~ns.svc.cluster.local) or ns/name (a WorkloadEntry, or an endpoint labelled app=name)')
    .addOption(new Option('--kind <kind>', 'the caller: an Envoy sidecar or a proxyless gRPC client').choices(['envoy', 'grpc']).default('envoy'))
    .addOption(new Option('--callee-kind <kind>', 'what serves the destination (default: as --kind)').choices(['envoy', 'grpc']))
    .option('--namespace <ns>', 'caller namespace (when --from gives none)')
    .option('--labels <k=v,...>', "caller labels (replace those found for --from's node id; added to a workload's)", labelsArg)
    .option('--ip <ip>', 'caller IP')
    .option('--locality <region/zone/subzone>', 'caller locality')
    .option('-H, --header <header>', "request header 'name: value' (repeatable; cookies as 'cookie: a=b; c=d')", collect, [])
    .option('--json', 'print the explanation as JSON')
    .option(MESH_CONFIG_FLAG, MESH_CONFIG_HELP)
    .option(STATE_DIR_FLAG, STATE_DIR_HELP)
    .action(async (request: string, o: ExplainFlags, cmd: Command) => {
      const adminGiven = cmd.getOptionValueSource('admin') === 'cli';
      if (o.configDir !== undefined && adminGiven) cmd.error('error: give --config-dir (rule files) or --admin (a running control plane), not both');
      // An explicit --config-dir wins over MESHPILOT_ADMIN from the environment.
      if (o.configDir === undefined) {
        if (o.admin === undefined) cmd.error("error: give --config-dir DIR (explain the rules in files) or --admin URL (ask a running control plane; also MESHPILOT_ADMIN)");
        for (const [flag, value] of [['--state-dir', o.stateDir], ['--mesh-config', o.meshConfig]] as const) {
          if (value !== undefined) cmd.error(`error: ${flag} is for --config-dir; with --admin the control plane uses its own`);
        }
        return explainRemote(request, o, cmd);
      }
      const { state, formatIssue } = await load(o.configDir, o, cmd);
      const [{ explain }, { renderExplanation }, { ExplainInputError }] = await Promise.all([import('./explain.ts'), import('./render.ts'), import('./request.ts')]);
      for (const e of state.errors) console.error(`error (rule left out, as the server would): ${formatIssue(e)}`);
      try {
        const e = explain(state, { request, headers: o.header, from: o.from, kind: o.kind, calleeKind: o.calleeKind, namespace: o.namespace, labels: o.labels, ip: o.ip, locality: o.locality });
        process.stdout.write(o.json ? `${JSON.stringify(e, null, 2)}\n` : renderExplanation(e));
      } catch (err) {
        if (!(err instanceof ExplainInputError)) throw err;
        console.error(`error: ${err.message}`);
        process.exitCode = 2;
      }
    });
}

export function routeTestCommand(): Command {
  return new Command('test')
    .description('run route test files (requests and their expected route, destination, fault, decision) against a config directory')
    .argument('<files...>', 'YAML route test files')
    .requiredOption('--config-dir <dir>', 'directory of .yaml/.yml rule files')
    .option(MESH_CONFIG_FLAG, MESH_CONFIG_HELP)
    .action(async (files: string[], o: { configDir: string; meshConfig?: string }, cmd: Command) => {
      const { state, formatIssue } = await load(o.configDir, o, cmd);
      const { checkCase, formatProblem, formatResult, formatSummary, loadRouteTests, runFailed } = await import('./route-tests.ts');
      // Tests are counted as tests; a file that cannot be read or parsed, and a rejected rule,
      // are errors counted apart (they fail the run all the same).
      const counts: RunCounts = { passed: 0, failed: 0, filesWithErrors: 0, fileErrors: 0, ruleErrors: state.errors.length };
      for (const e of state.errors) console.log(`error: ${formatIssue(e)}`);
      for (const file of files) {
        let loaded;
        try {
          loaded = loadRouteTests(file);
        } catch (err) {
          counts.filesWithErrors++;
          counts.fileErrors++;
          console.log(`error: ${file}: ${(err as Error).message}`);
          continue;
        }
        if (loaded.problems.length) {
          counts.filesWithErrors++;
          counts.fileErrors += loaded.problems.length;
        }
        for (const p of loaded.problems) console.log(`error: ${formatProblem(p)}`);
        for (const c of loaded.cases) {
          const r = checkCase(state, c);
          if (r.error || r.diffs.length) counts.failed++;
          else counts.passed++;
          process.stdout.write(formatResult(r));
        }
      }
      console.log(formatSummary(counts));
      process.exitCode = runFailed(counts) ? 1 : 0;
    });
}
