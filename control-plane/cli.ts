// meshpilot command line: serve, validate, translate, inject, webhook.
import { Command, InvalidArgumentError } from 'commander';
import { checkResource } from './envoy/check.ts';
import { runInjectCommand } from './inject/inject-command.ts';
import { runWebhook } from './webhook/webhook-command.ts';
import { loadDirectory } from './config/load.ts';
import { createLogger } from './log.ts';
import { compile, formatIssue } from './pipeline.ts';
import { splitHostPort, startControlPlane } from './server.ts';
import { proxyFromNode, type Proxy } from './translate/proxy.ts';
import { translate } from './translate/translate.ts';
import { TYPE_ORDER } from './translate/type-urls.ts';

function parseJson(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch {
    /* reported below */
  }
  throw new InvalidArgumentError('expected a JSON object');
}

const program = new Command('meshpilot').description('Service-mesh control plane: Istio-compatible rules to Envoy and proxyless gRPC over ADS');

program
  .command('serve')
  .description('serve xDS for the rules in a directory, following changes live')
  .requiredOption('--config-dir <dir>', 'directory of .yaml/.yml rule files')
  .option('--xds-listen <host:port>', 'ADS gRPC address', '127.0.0.1:15010')
  .option('--admin-listen <host:port>', 'admin API address', '127.0.0.1:15014')
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  .action(async (o: { configDir: string; xdsListen: string; adminListen: string; logLevel: string }) => {
    const log = createLogger(o.logLevel);
    const cp = await startControlPlane({ configDir: o.configDir, xdsListen: o.xdsListen, adminListen: o.adminListen, logger: log });
    const s = cp.state();
    log.info(
      { xds: cp.xdsAddress, admin: cp.adminAddress, services: s.model.services.length, rules: s.accepted.length, errors: s.errors.length },
      `meshpilot serving ${s.model.services.length} services and ${s.accepted.length} rules (${s.errors.length} errors) on ${cp.xdsAddress}`,
    );
    const stop = async () => {
      await cp.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program
  .command('validate')
  .description('check the rules in a directory; errors as file:line:col field.path: message')
  .requiredOption('--config-dir <dir>', 'directory of .yaml/.yml rule files')
  .action((o: { configDir: string }) => {
    const state = compile(loadDirectory(o.configDir));
    for (const e of state.errors) console.log(`error: ${formatIssue(e)}`);
    for (const w of state.warnings) console.log(`warning: ${formatIssue(w)}`);
    // The generated config must pass Envoy's checks too, for both kinds of client in every namespace.
    const namespaces = [...new Set(['default', ...state.accepted.map((a) => a.namespace)])].sort();
    let generatedErrors = 0;
    for (const namespace of namespaces) {
      for (const kind of ['envoy', 'grpc'] as const) {
        const proxy: Proxy = { id: `validate~${kind}~${namespace}`, kind, namespace, labels: {}, locality: { region: '', zone: '', subzone: '' } };
        const res = translate(state.model, proxy);
        for (const t of TYPE_ORDER) {
          for (const r of res[t]) {
            for (const v of checkResource(r)) {
              generatedErrors++;
              console.log(`error: generated ${t.split('.').pop()} ${String(r.name ?? r.cluster_name)} for ${kind} in ${namespace}: ${v.path}: ${v.message}`);
            }
          }
        }
      }
    }
    const total = state.errors.length + generatedErrors;
    console.log(`${state.accepted.length} rules valid, ${total} errors, ${state.warnings.length} warnings`);
    process.exitCode = total ? 1 : 0;
  });

program
  .command('translate')
  .description('print every xDS resource one proxy would receive (proto3 JSON, push order)')
  .requiredOption('--config-dir <dir>', 'directory of .yaml/.yml rule files')
  .requiredOption('--node-id <id>', 'node id, e.g. sidecar~10.0.0.1~reviews-v1-1.default~default.svc.cluster.local')
  .option('--node-metadata <json>', 'node metadata, e.g. {"NAMESPACE":"default","LABELS":{"app":"reviews"},"GENERATOR":"grpc"}', parseJson)
  .action((o: { configDir: string; nodeId: string; nodeMetadata?: Record<string, unknown> }) => {
    const state = compile(loadDirectory(o.configDir));
    for (const e of state.errors) console.error(`error: ${formatIssue(e)}`);
    const proxy = proxyFromNode({ id: o.nodeId, ...(o.nodeMetadata ? { metadata: o.nodeMetadata } : {}) });
    const res = translate(state.model, proxy);
    const all = TYPE_ORDER.flatMap((t) => res[t]);
    let bad = 0;
    for (const r of all) for (const v of checkResource(r)) {
      bad++;
      console.error(`error: generated ${String(r.name ?? r.cluster_name)}: ${v.path}: ${v.message}`);
    }
    console.log(JSON.stringify({ node: { id: proxy.id, kind: proxy.kind, namespace: proxy.namespace, labels: proxy.labels }, resources: all }, null, 2));
    process.exitCode = bad || state.errors.length ? 1 : 0;
  });

program
  .command('inject')
  .description('add the Envoy sidecar to the pods in YAML files (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)')
  .requiredOption('-f, --file <file>', 'YAML file, several documents allowed; - for stdin')
  .option('-o, --output <file>', 'write here instead of stdout')
  .option('--namespace <ns>', 'namespace of objects that name none', 'default')
  .option('--injection-config <file>', 'injection settings (default sidecar-config/injection.yaml)')
  .option('-q, --quiet', 'do not print what was injected or skipped and why (stderr)')
  .action((o: { file: string; output?: string; namespace: string; injectionConfig?: string; quiet?: boolean }) => {
    try {
      process.exitCode = runInjectCommand(o);
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  });

program
  .command('webhook')
  .description('run the sidecar injection admission webhook (HTTPS, POST /inject)')
  .option('--listen <host:port>', 'HTTPS address', '127.0.0.1:9443')
  .option('--cert <file>', 'serving certificate (PEM); reloaded when the file changes')
  .option('--key <file>', 'its private key (PEM)')
  .option('--cert-dir <dir>', 'without --cert/--key: use tls.crt and tls.key here if mounted, else make a CA and certificate', '/etc/meshpilot/webhook-tls')
  .option('--service <name.namespace>', "the webhook's Service, named in a self-made certificate", 'meshpilot.meshpilot-system')
  .option('--webhook-config <name>', 'MutatingWebhookConfiguration whose caBundle to set when the CA is self-made')
  .option('--namespace-labels <json>', 'static namespace labels, e.g. {"shop":{"meshpilot.io/inject":"enabled"}}, instead of reading Kubernetes', parseJson)
  .option('--injection-config <file>', 'injection settings (default sidecar-config/injection.yaml)')
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  .action(async (o: { listen: string; cert?: string; key?: string; certDir: string; service: string; webhookConfig?: string; namespaceLabels?: Record<string, Record<string, string>>; injectionConfig?: string; logLevel: string }) => {
    const log = createLogger(o.logLevel);
    const [host, port] = splitHostPort(o.listen);
    const [service, serviceNamespace] = o.service.split('.') as [string, string | undefined];
    let server;
    try {
      server = await runWebhook({ ...o, host, port, service, serviceNamespace: serviceNamespace ?? 'meshpilot-system', logger: log });
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      process.exit(1);
    }
    const stop = async () => {
      await server.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

await program.parseAsync(process.argv);
