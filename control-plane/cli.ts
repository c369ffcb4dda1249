// meshpilot command line: serve, validate, translate, explain, test, wait, inject, webhook, agent, ca, canary, experiment.
// Only what defines the commands and parses their flags is imported here; each action imports what
// it runs (the pipeline, gRPC, express, the Kubernetes client) when it runs, so `--help` and the
// offline commands do not pay for the server (test/cli-imports.test.ts keeps it that way).
import { Command, InvalidArgumentError, Option } from 'commander';
import { agentCommand } from './agent/agent-command.ts';
import { caCommand } from './ca/ca-command.ts';
import { addNetworkGateway, type NetworkGateways } from './kube/network-gateways.ts';
import { DEFAULT_MESH } from './model/mesh-identity.ts';
import { MESH_CONFIG_FLAG, MESH_CONFIG_HELP, meshFromFlags } from './mesh-option.ts';
import { STATE_DIR_FLAG, STATE_DIR_HELP } from './rollout/state-dir-option.ts';
import { parseClusterFlag, type ClusterFlag } from './kube/cluster-spec.ts';
import { explainCommand, routeTestCommand } from './explain/cli-commands.ts';
import { parseDuration, waitUntilSynced } from './observe/wait.ts';
import { DEFAULT_CA_DIR, DEFAULT_CA_NAMESPACE, DEFAULT_TOKEN_AUDIENCE } from './ca/defaults.ts';
import { checkTrustDomain, DEFAULT_TRUST_DOMAIN } from './ca/identity.ts';
import { logFormatOption, type LogFormat } from './log-format-option.ts';
import { meshpilotVersion } from './version.ts';
import { stopOnSignals } from './shutdown.ts';
import { adminHint } from './observe/admin-url.ts';
import { adminOption } from './observe/admin-client.ts';
import { canaryCommand } from './rollout/canary-command.ts';
import { experimentCommand } from './rollout/experiment-command.ts';
import { checkTimings, LEADER_ELECTION_DEFAULTS } from './kube/leader-election-options.ts';
import { splitHostPort } from './host-port.ts';

function parseJson(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch {
    /* reported below */
  }
  throw new InvalidArgumentError('expected a JSON object');
}

function gatewayOption(text: string, previous: NetworkGateways | undefined): NetworkGateways {
  try {
    return addNetworkGateway(text, previous);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a whole number above 0');
  return n;
}

const GATEWAY_HELP = 'gateway of a network for callers in other networks (repeatable), e.g. network2=192.0.2.10:15443';

async function loadWith(dir: string, networkGateways?: NetworkGateways) {
  const { loadDirectory } = await import('./config/load.ts');
  const load = loadDirectory(dir);
  return networkGateways ? { ...load, networkGateways } : load;
}

/** What translate runs: the pipeline up to Envoy's checks (validate's is control-plane/validate.ts). */
async function offlinePipeline() {
  const [{ compile, formatIssue }, { translate }, { TYPE_ORDER }, { checkResource }, { proxyFromNode }] = await Promise.all([
    import('./model/compile.ts'),
    import('./translate/translate.ts'),
    import('./translate/type-urls.ts'),
    import('./envoy/check.ts'),
    import('./translate/proxy.ts'),
  ]);
  return { compile, formatIssue, translate, TYPE_ORDER, checkResource, proxyFromNode };
}

/** The model a file-mode serve with this --state-dir serves: the rules plus the rollout state it recorded. */
async function servedModel(model: import('./model/types.ts').Model, stateDir: string) {
  const { loadRuntimeForCli } = await import('./rollout/cli-runtime.ts');
  return loadRuntimeForCli(model, stateDir, (line) => console.error(`warning: ${line}`)).catch((e: unknown) => program.error(`error: ${(e as Error).message}`));
}

const program = new Command('meshpilot')
  .description('Service-mesh control plane: Istio-compatible rules to Envoy and proxyless gRPC over ADS')
  .version(meshpilotVersion(), '-V, --version', 'print the version');

function collectCluster(value: string, previous: ClusterFlag[]): ClusterFlag[] {
  try {
    return [...previous, parseClusterFlag(value)];
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
  }
}

interface ServeFlags {
  configDir?: string;
  loadReportInterval: number;
  credentialsDir?: string;
  xdsListen: string;
  adminListen: string;
  monitoringListen?: string;
  logLevel: string;
  logFormat: LogFormat;
  kubeconfig?: string;
  inCluster?: boolean;
  clusterName: string;
  network?: string;
  gateway?: string;
  cluster: ClusterFlag[];
  clustersFile?: string;
  clusterSecretsNamespace?: string;
  syncTimeout: string;
  networkGateway?: NetworkGateways;
  xdsMaxNamesPerRequest?: number;
  xdsMaxNamesPerStream?: number;
  xdsMaxMessageBytes?: number;
  xdsMaxStreams?: number;
  xdsMaxStreamsPerConnection?: number;
  xdsIdleConnectionTimeout?: number;
  xdsFirstRequestTimeout?: number;
  xdsTls?: boolean;
  xdsRequireIdentity?: boolean;
  stateDir?: string;
  dashboardActions?: boolean;
  adminHost?: string[];
  xdsPlaintextListen?: string;
  caDir: string;
  caNamespace: string;
  trustDomain: string;
  rootNamespace: string;
  meshConfig?: string;
  workloadCertTtl: number;
  caTokens?: string;
  caTokenAudience: string;
  // Leader election (replicas): see addLeaderElectionOptions.
  leaderElection: boolean;
  leaderElectionNamespace?: string;
  leaderElectionLeaseDuration: number;
  leaderElectionRenewDeadline: number;
  leaderElectionRetryPeriod: number;
}

/** Several replicas: only the one holding Lease meshpilot-leader writes to the cluster. */
function addLeaderElectionOptions(cmd: Command): Command {
  return cmd
    .option('--no-leader-election', 'with a config cluster: do not elect a leader (run one replica only); this process writes rule status and the CA ConfigMaps')
    .option('--leader-election-namespace <ns>', 'namespace of the Lease meshpilot-leader that replicas elect their leader with (default: --ca-namespace)')
    .addOption(new Option('--leader-election-lease-duration <duration>', 'how long an unrenewed Lease stays taken').argParser(durationArg).default(LEADER_ELECTION_DEFAULTS.leaseDurationMs, '15s'))
    .addOption(new Option('--leader-election-renew-deadline <duration>', 'the leader stops writing when it could not renew for this long').argParser(durationArg).default(LEADER_ELECTION_DEFAULTS.renewDeadlineMs, '10s'))
    .addOption(new Option('--leader-election-retry-period <duration>', 'how often the leader renews and the others try to take over').argParser(durationArg).default(LEADER_ELECTION_DEFAULTS.retryPeriodMs, '2s'));
}

function leaderElectionFrom(o: ServeFlags) {
  if (!o.leaderElection) return false as const;
  try {
    const t = { leaseDurationMs: o.leaderElectionLeaseDuration, renewDeadlineMs: o.leaderElectionRenewDeadline, retryPeriodMs: o.leaderElectionRetryPeriod };
    checkTimings(t);
    return { ...t, namespace: o.leaderElectionNamespace ?? o.caNamespace };
  } catch (e) {
    return program.error(`error: ${(e as Error).message}`);
  }
}

function trustDomainArg(text: string): string {
  try {
    return checkTrustDomain(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

addLeaderElectionOptions(program
  .command('serve'))
  .description('serve xDS for the rules in a directory and/or Kubernetes clusters, following changes live')
  .option('--config-dir <dir>', 'directory of .yaml/.yml rule files')
  .option('--xds-listen <host:port>', 'ADS gRPC address', '127.0.0.1:15010')
  .option('--admin-listen <host:port>', 'admin API address', '127.0.0.1:15014')
  .option('--monitoring-listen <host:port>', 'also serve GET /healthz, /readyz and /metrics (nothing else) here, for probes and scrapers from outside while the admin API stays on loopback; a port other than --admin-listen\'s')
  .option('--admin-host <name>', '(repeatable) a host name the admin API and dashboard answer to besides IP addresses and localhost (e.g. a name you reach it by through a proxy); others get a 403, so a web page cannot read them through DNS rebinding', (v: string, prev: string[] = []) => [...prev, v])
  .option('--dashboard-actions', 'the dashboard (GET / on the admin address) offers canary promote/pause/resume/abort buttons; without it the page only shows')
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  .addOption(logFormatOption())
  .option('--network-gateway <network=address:port>', GATEWAY_HELP, gatewayOption)
  .option('--kubeconfig <file>', 'config cluster (rules from CRDs, services, cluster Secrets) from a kubeconfig file')
  .option('--in-cluster', 'config cluster from the pod\'s service account')
  .option('--cluster-name <name>', 'name of the config cluster', 'local')
  .option('--network <name>', 'network of the config cluster\'s pods')
  .option('--gateway <host:port>', 'where other networks reach the config cluster\'s pods')
  .option('--cluster <spec>', 'remote cluster: name=...,kubeconfig=...[,network=...][,gateway=host:port] (repeatable)', collectCluster, [])
  .option('--clusters-file <file>', 'remote clusters from a YAML file: clusters: [{ name, kubeconfig, network, gateway }]')
  .option('--cluster-secrets-namespace <ns>', 'register clusters from Secrets labelled meshpilot.io/cluster in this namespace of the config cluster')
  .option('--sync-timeout <seconds>', 'serve after this long even if some cluster has not synced', '30')
  .option('--xds-max-names-per-request <n>', 'resource names in one xDS request (default 10000)', positiveInt)
  .option('--xds-max-names-per-stream <n>', 'resource names one xDS stream may subscribe to, per type (default 10000)', positiveInt)
  .option('--xds-max-message-bytes <n>', 'largest xDS request message (default 4194304)', positiveInt)
  .option('--xds-max-streams <n>', 'open xDS streams in all; more are refused with RESOURCE_EXHAUSTED (default 20000)', positiveInt)
  .option('--xds-max-streams-per-connection <n>', 'concurrent xDS streams on one connection (default 100)', positiveInt)
  .option('--xds-idle-connection-timeout <duration>', 'close an xDS connection without a stream (or that never completes the HTTP/2 handshake) after this long (default 10s)', durationArg)
  .option('--xds-first-request-timeout <duration>', 'end an xDS stream that sends no request for this long after opening (default 10s)', durationArg)
  .option('--xds-require-identity', 'with --xds-tls: refuse xDS streams without a verified workload certificate, and any whose node claims another namespace or service account')
  .option('--xds-tls', 'TLS on the xDS port with the mesh CA, which is then served there too (istio.v1.auth.IstioCertificateService)')
  .option('--xds-plaintext-listen <host:port>', 'with --xds-tls: also serve xDS (not the CA) in plaintext here, for proxyless gRPC clients that cannot do TLS to the xDS server; proxies there are not authenticated')
  .option('--ca-dir <dir>', 'mesh CA directory (without a config cluster): its root is made and kept here (file mode), or an Istio plug-in CA (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) is read from here', DEFAULT_CA_DIR)
  .option('--ca-namespace <ns>', 'with --xds-tls and a config cluster (--kubeconfig/--in-cluster): the namespace whose Secrets hold the CA (cacerts: an Istio plug-in CA; else meshpilot-ca, made on first start) instead of --ca-dir', DEFAULT_CA_NAMESPACE)
  .option('--trust-domain <domain>', 'SPIFFE trust domain of workload identities', trustDomainArg, DEFAULT_TRUST_DOMAIN)
  .option('--workload-cert-ttl <duration>', 'longest lifetime of a workload certificate; shorter requests are honoured', durationArg, 24 * 3600 * 1000)
  .option('--ca-tokens <file>', 'bootstrap tokens for the CA, one "token namespace serviceAccount" per line; re-read when it changes')
  .option('--ca-token-audience <aud>', 'audience Kubernetes service account tokens must carry (TokenReview, with --kubeconfig/--in-cluster)', DEFAULT_TOKEN_AUDIENCE)
  .option('--root-namespace <ns>', 'namespace whose selector-less PeerAuthentication is mesh-wide', DEFAULT_MESH.rootNamespace)
  .option('--credentials-dir <dir>', 'TLS certificates for credentialName (gateways), DIR/<namespace>/<name>/{tls.crt,tls.key,ca.crt}, re-read every second; with a config cluster its Secrets are read too')
  .option(MESH_CONFIG_FLAG, `${MESH_CONFIG_HELP} (a mounted ConfigMap: restart to apply a change)`)
  .addOption(new Option('--load-report-interval <duration>', 'how often proxies report their load (LRS) for canaries and fault experiment guards; a canary step is judged on what has arrived').argParser(durationArg).default(10_000, '10s'))
  .option('--state-dir <dir>', 'without a config cluster: keep canary and fault experiment state here (one JSON file each), so a restart resumes rollouts where they were; without it the state is kept in memory only')
  .action(async (o: ServeFlags, cmd: Command) => {
    const [{ createLogger }, { startControlPlane }, { quietGrpcBindLog }] = await Promise.all([import('./log.ts'), import('./server.ts'), import('./grpc-bind-log.ts')]);
    quietGrpcBindLog();
    const log = createLogger(o.logLevel, o.logFormat);
    const mesh = await meshFromFlags(o, cmd, (line) => log.warn(line)).catch((e: unknown) => program.error(`error: ${e instanceof Error ? e.message : String(e)}`));
    let flags = o.cluster;
    try {
      if (o.clustersFile) flags = [...flags, ...(await import('./kube/cluster-flags.ts')).parseClustersFile(o.clustersFile)];
    } catch (e) {
      program.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    }
    // The Kubernetes client is loaded only when a cluster is named.
    const registrations = o.kubeconfig || o.inCluster || flags.length ? await import('./kube/cluster-registration.ts') : undefined;
    const configCluster = registrations?.configClusterFromFlags(o);
    const remoteClusters = registrations ? flags.map(registrations.registrationFromFlag) : [];
    if (!o.configDir && !configCluster && remoteClusters.length === 0) {
      program.error('error: give --config-dir, a cluster (--kubeconfig, --in-cluster, --cluster), or both');
    }
    if (o.xdsPlaintextListen && !o.xdsTls) program.error('error: --xds-plaintext-listen is only meaningful with --xds-tls (without it the xDS port is plaintext already)');
    if (o.xdsPlaintextListen && o.xdsRequireIdentity) program.error('error: --xds-plaintext-listen cannot be combined with --xds-require-identity (no stream there has a verified identity)');
    const kube = configCluster || remoteClusters.length
      ? {
          ...(configCluster ? { configCluster } : {}),
          remoteClusters,
          ...(o.clusterSecretsNamespace ? { secretsNamespace: o.clusterSecretsNamespace } : {}),
          syncTimeoutMs: Number(o.syncTimeout) * 1000,
        }
      : undefined;
    // A start that fails for a reason of the user's (a port in use: ListenError) is one line, exit 1.
    const leaderElection = leaderElectionFrom(o);
    const cp = await startControlPlane({ ...(o.configDir ? { configDir: o.configDir } : {}), ...(kube ? { kube } : {}), leaderElection, xdsListen: o.xdsListen, xdsLimits: {
      maxNamesPerRequest: o.xdsMaxNamesPerRequest,
      maxNamesPerStream: o.xdsMaxNamesPerStream,
      maxMessageBytes: o.xdsMaxMessageBytes,
      maxStreams: o.xdsMaxStreams,
      maxStreamsPerConnection: o.xdsMaxStreamsPerConnection,
      idleConnectionMs: o.xdsIdleConnectionTimeout,
      firstRequestMs: o.xdsFirstRequestTimeout,
    }, adminListen: o.adminListen, ...(o.monitoringListen ? { monitoringListen: o.monitoringListen } : {}), logger: log, ...(o.networkGateway ? { networkGateways: o.networkGateway } : {}),
    // One trust domain for the CA's certificates and the policies that check them.
    mesh,
    ...(o.xdsPlaintextListen ? { xdsPlaintextListen: o.xdsPlaintextListen } : {}),
    ...(o.credentialsDir ? { credentialsDir: o.credentialsDir } : {}),
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    ...(o.dashboardActions ? { dashboardActions: true } : {}),
    ...(o.adminHost ? { adminHosts: o.adminHost } : {}),
    loadReporting: { intervalMs: o.loadReportInterval },
    ...(o.xdsTls ? { xdsTls: {
      dir: o.caDir,
      trustDomain: mesh.trustDomain,
      workloadCertTtlMs: o.workloadCertTtl,
      tokenAudience: o.caTokenAudience,
      requireIdentity: Boolean(o.xdsRequireIdentity),
      ...(o.caTokens ? { tokensFile: o.caTokens } : {}),
      // Service account tokens are checked by the config cluster's API server.
      ...(configCluster ? { kubeConfig: configCluster.kubeConfig } : {}),
      // With a config cluster the root is kept in a Secret there, so every replica shares it.
      ...(configCluster ? { secrets: { kubeConfig: configCluster.kubeConfig, namespace: o.caNamespace } } : {}),
    } } : {}) }).catch((e: unknown) => program.error(`error: ${e instanceof Error ? e.message : String(e)}`));
    const s = cp.state();
    log.info(
      { xds: cp.xdsAddress, ...(cp.xdsPlaintextAddress ? { xdsPlaintext: cp.xdsPlaintextAddress } : {}), admin: cp.adminAddress, services: s.model.services.length, rules: s.accepted.length, errors: s.errors.length },
      `meshpilot serving ${s.model.services.length} services and ${s.accepted.length} rules (${s.errors.length} errors) on ${cp.xdsAddress}`,
    );
    if (cp.adminAddress) log.info(adminHint(cp.adminAddress));
    stopOnSignals(log, () => cp.stop());
  });

program
  .command('validate')
  .description('check the rules in a directory; errors as file:line:col field.path: message')
  .requiredOption('--config-dir <dir>', 'directory of .yaml/.yml rule files')
  .option('--network-gateway <network=address:port>', GATEWAY_HELP, gatewayOption)
  .option('--trust-domain <domain>', 'the mesh\'s SPIFFE trust domain (as serve\'s): principals in another one are warned about', trustDomainArg, DEFAULT_TRUST_DOMAIN)
  .option(MESH_CONFIG_FLAG, MESH_CONFIG_HELP)
  .action(async (o: { configDir: string; networkGateway?: NetworkGateways; trustDomain: string; meshConfig?: string }, cmd: Command) => {
    const [{ validateRules }, { terminalProgress }] = await Promise.all([import('./validate.ts'), import('./progress.ts')]);
    const mesh = await meshFromFlags(o, cmd, (line) => console.log(`warning: ${line}`)).catch((e: unknown) => program.error(`error: ${e instanceof Error ? e.message : String(e)}`));
    const options = { configDir: o.configDir, trustDomain: mesh.trustDomain, mesh, ...(o.networkGateway ? { networkGateways: o.networkGateway } : {}) };
    process.exitCode = validateRules(options, (line) => console.log(line), terminalProgress(process.stderr));
  });

program
  .command('translate')
  .description('print every xDS resource one proxy would receive (proto3 JSON, push order)')
  .requiredOption('--config-dir <dir>', 'directory of .yaml/.yml rule files')
  .requiredOption('--node-id <id>', 'node id, e.g. sidecar~10.0.0.1~reviews-v1-1.default~default.svc.cluster.local')
  .option('--node-metadata <json>', 'node metadata, e.g. {"NAMESPACE":"default","LABELS":{"app":"reviews"},"GENERATOR":"grpc","NETWORK":"network1"}', parseJson)
  .option('--node-locality <region/zone/subzone>', 'node locality, e.g. us-east/zone-a')
  .option('--network-gateway <network=address:port>', GATEWAY_HELP, gatewayOption)
  .option(MESH_CONFIG_FLAG, MESH_CONFIG_HELP)
  .option(STATE_DIR_FLAG, STATE_DIR_HELP)
  .action(async (o: { configDir: string; nodeId: string; nodeMetadata?: Record<string, unknown>; nodeLocality?: string; networkGateway?: NetworkGateways; meshConfig?: string; stateDir?: string }, cmd: Command) => {
    const { compile, formatIssue, translate, TYPE_ORDER, checkResource, proxyFromNode } = await offlinePipeline();
    const mesh = await meshFromFlags(o, cmd, (line) => console.error(`warning: ${line}`)).catch((e: unknown) => program.error(`error: ${e instanceof Error ? e.message : String(e)}`));
    const state = compile(await loadWith(o.configDir, o.networkGateway), [], undefined, mesh);
    for (const e of state.errors) console.error(`error: ${formatIssue(e)}`);
    const [region, zone, sub_zone] = (o.nodeLocality ?? '').split('/');
    const locality = { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(sub_zone ? { sub_zone } : {}) };
    const proxy = proxyFromNode({ id: o.nodeId, ...(o.nodeMetadata ? { metadata: o.nodeMetadata } : {}), locality });
    const model = o.stateDir ? await servedModel(state.model, o.stateDir) : state.model;
    const res = translate(model, proxy);
    const all = TYPE_ORDER.flatMap((t) => res[t]);
    let bad = 0;
    for (const r of all) for (const v of checkResource(r)) {
      bad++;
      console.error(`error: generated ${String(r.name ?? r.cluster_name)}: ${v.path}: ${v.message}`);
    }
    console.log(JSON.stringify({ node: { id: proxy.id, kind: proxy.kind, namespace: proxy.namespace, labels: proxy.labels }, resources: all }, null, 2));
    process.exitCode = bad || state.errors.length ? 1 : 0;
  });

program.addCommand(explainCommand());
program.addCommand(routeTestCommand());

program
  .command('wait')
  .description('wait until every matching proxy has ACKed the current config, or until a canary is promoted or rolled back (polls the admin API)')
  .addOption(adminOption())
  .option('--proxy-selector <selector>', 'label selector, e.g. app=reviews,version=v2')
  .option('--proxy <id>', 'one proxy by node id')
  .option('--until-synced', 'wait until the matching proxies have ACKed the current config')
  .option('--canary <ns/name>', 'wait until this canary is promoted (exit 0) or rolled back (exit 3), printing each weight change')
  .addOption(new Option('--timeout <duration>', 'give up after this long, e.g. 60s, 500ms, 10m (exit 1)').argParser(durationArg).default(60_000, '60s'))
  .addHelpText('after', '\nExit codes: 0 synced or promoted, 1 timed out (or the admin API cannot tell), 2 nothing to wait for, 3 the canary was rolled back.')
  .action(async (o: { admin: string; proxySelector?: string; proxy?: string; untilSynced?: boolean; canary?: string; timeout: number }) => {
    if (!o.untilSynced === !o.canary) {
      console.error(`error: say what to wait for: --until-synced or --canary NS/NAME${o.untilSynced ? ' (not both)' : ''}`);
      process.exitCode = 2;
      return;
    }
    if (o.canary) {
      const [{ waitForCanary }, { parseRef }] = await Promise.all([import('./rollout/canary-wait.ts'), import('./rollout/admin-views.ts')]);
      let ref;
      try {
        ref = parseRef(o.canary);
      } catch (e) {
        console.error(`error: --canary: ${(e as Error).message}`);
        process.exitCode = 2;
        return;
      }
      const r = await waitForCanary({ admin: o.admin, ...ref, timeoutMs: o.timeout, onChange: (line) => console.log(line) });
      if (r.outcome === 'promoted') console.log(r.message);
      else console.error(r.message);
      process.exitCode = r.exitCode;
      return;
    }
    const r = await waitUntilSynced({ admin: o.admin, timeoutMs: o.timeout, ...(o.proxySelector ? { selector: o.proxySelector } : {}), ...(o.proxy ? { proxy: o.proxy } : {}) });
    if (r.ok) console.log(r.message);
    else console.error(r.message);
    process.exitCode = r.ok ? 0 : 1;
  });

function durationArg(text: string): number {
  try {
    return parseDuration(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

program
  .command('inject')
  .description('add the Envoy sidecar to the pods in YAML files (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)')
  .requiredOption('-f, --file <file>', 'YAML file, several documents allowed; - for stdin')
  .option('-o, --output <file>', 'write here instead of stdout')
  .option('--namespace <ns>', 'namespace of objects that name none', 'default')
  .option('--injection-config <file>', 'injection settings (default sidecar-config/injection.yaml)')
  .option('-q, --quiet', 'do not print what was injected or skipped and why (stderr)')
  .action(async (o: { file: string; output?: string; namespace: string; injectionConfig?: string; quiet?: boolean }) => {
    const { runInjectCommand } = await import('./inject/inject-command.ts');
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
  .option('--namespace-labels <file>', 'namespace labels from a YAML/JSON file (namespace -> labels, e.g. shop: {meshpilot.io/inject: enabled}) instead of the cluster')
  .option('--namespace-label <ns=key=value>', 'one namespace label, e.g. shop=meshpilot.io/inject=enabled (repeatable; over --namespace-labels)', collectNamespaceLabel, [])
  .option('--kubeconfig <file>', 'read namespace labels (and patch --webhook-config) in this cluster; in a pod its service account is used by itself')
  .option('--in-cluster', "the pod's service account (the default when running in a pod)")
  .option('--injection-config <file>', 'injection settings (default sidecar-config/injection.yaml)')
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  .addOption(logFormatOption())
  .action(async (o: WebhookFlags) => {
    // Loaded here: the rest of the command line does without the webhook's server and the Kubernetes client.
    const [{ createLogger }, { runWebhook }, { quietGrpcBindLog }, { clusterAccess, namespaceLabelSource, parseNamespaceLabelFlag }] = await Promise.all([
      import('./log.ts'),
      import('./webhook/webhook-command.ts'),
      import('./grpc-bind-log.ts'),
      import('./webhook/namespace-source.ts'),
    ]);
    quietGrpcBindLog();
    for (const v of o.namespaceLabel) {
      try {
        parseNamespaceLabelFlag(v);
      } catch (e) {
        program.error(`error: option '--namespace-label <ns=key=value>' argument '${v}' is invalid. ${(e as Error).message}`);
      }
    }
    const log = createLogger(o.logLevel, o.logFormat);
    const [host, port] = splitHostPort(o.listen);
    const [service, serviceNamespace] = o.service.split('.') as [string, string | undefined];
    let server;
    try {
      // Without a cluster, namespace labels come from the flags or are none (namespace-source.ts).
      const cluster = clusterAccess(o);
      const { namespaceLabels: _file, ...rest } = o;
      server = await runWebhook({ ...rest, host, port, service, serviceNamespace: serviceNamespace ?? 'meshpilot-system', logger: log, namespaces: namespaceLabelSource(o, cluster), ...(cluster ? { cluster } : {}) });
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      process.exit(1);
    }
    stopOnSignals(log, () => server.stop());
  });

interface WebhookFlags {
  listen: string;
  cert?: string;
  key?: string;
  certDir: string;
  service: string;
  webhookConfig?: string;
  namespaceLabels?: string;
  namespaceLabel: string[];
  kubeconfig?: string;
  inCluster?: boolean;
  injectionConfig?: string;
  logLevel: string;
  logFormat: LogFormat;
}

/** Collected as given; checked in the action (the parser lives with the webhook's code). */
function collectNamespaceLabel(value: string, previous: string[]): string[] {
  return [...previous, value];
}

program.addCommand(agentCommand());
program.addCommand(caCommand());
program.addCommand(canaryCommand());
program.addCommand(experimentCommand());

await program.parseAsync(process.argv);
