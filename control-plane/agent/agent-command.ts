// `meshpilot agent`: flags (with the pod's downward-API environment as defaults) to AgentOptions.
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { logFormatOption, type LogFormat } from '../log-format-option.ts';
import { parseDuration } from '../observe/wait.ts';
import { DEFAULT_TRUST_DOMAIN } from '../ca/identity.ts';
import { DEFAULT_SDS_SOCKET } from './defaults.ts';
import { AGENT_READY_PATH, parseListen } from './ready-server.ts';

export const DEFAULT_OUT_DIR = '/var/run/meshpilot/certs';

interface AgentFlags {
  caAddress: string;
  caRoot: string;
  caServerName?: string;
  tokenFile?: string;
  trustDomain: string;
  namespace?: string;
  serviceAccount?: string;
  outDir: string;
  sdsSocket: string | false;
  readyListen?: { host: string; port: number };
  certTtl: number;
  grpcBootstrap?: string;
  xdsAddress?: string;
  xdsChannelCreds: 'tls' | 'insecure';
  podIp?: string;
  podName?: string;
  labels: Record<string, string>;
  logLevel: string;
  logFormat: LogFormat;
}

function duration(text: string): number {
  try {
    return parseDuration(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function listen(text: string): { host: string; port: number } {
  try {
    return parseListen(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function labels(text: string): Record<string, string> {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')) return v as Record<string, string>;
  } catch {
    /* reported below */
  }
  throw new InvalidArgumentError('expected a JSON object of strings, e.g. {"app":"reviews"}');
}

export function agentCommand(): Command {
  return new Command('agent')
    .description('pod agent: gets and renews the workload certificate from the mesh CA, serves it to Envoy over SDS and writes it for proxyless gRPC')
    .requiredOption('--ca-address <host:port>', 'the mesh CA (CreateCertificate over TLS)')
    .requiredOption('--ca-root <file>', 'PEM root(s) to trust for the CA\'s serving certificate')
    .option('--ca-server-name <name>', 'name to check in the CA\'s serving certificate (default: the host of --ca-address)')
    .option('--token-file <file>', 'bearer token sent to the CA, re-read on every request (a projected ServiceAccount token)')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', DEFAULT_TRUST_DOMAIN)
    .addOption(new Option('--namespace <ns>', 'the workload\'s namespace').env('MESHPILOT_POD_NAMESPACE'))
    .addOption(new Option('--service-account <sa>', 'the workload\'s service account').env('MESHPILOT_SERVICE_ACCOUNT'))
    .option('--out-dir <dir>', 'where cert-chain.pem, key.pem and root-cert.pem are written', DEFAULT_OUT_DIR)
    .option('--sds-socket <path>', 'Unix socket for Envoy\'s SDS', DEFAULT_SDS_SOCKET)
    .option('--no-sds-socket', 'serve no SDS (a proxyless gRPC pod)')
    .option('--ready-listen <host:port>', `serve GET ${AGENT_READY_PATH} here: 200 once the agent has a certificate, else 503 (a startup probe)`, listen)
    .option('--cert-ttl <duration>', 'requested certificate lifetime (the CA may shorten it)', duration, 24 * 3600 * 1000)
    .option('--grpc-bootstrap <file>', 'also write an xDS bootstrap for proxyless gRPC here')
    .option('--xds-address <host:port>', 'meshpilot\'s xDS address, for --grpc-bootstrap')
    .addOption(new Option('--xds-channel-creds <type>', 'channel_creds in the gRPC bootstrap (grpc-js-xds 1.14.1 knows only insecure)').choices(['tls', 'insecure']).default('tls'))
    .addOption(new Option('--pod-ip <ip>', 'for the gRPC node id').env('MESHPILOT_POD_IP'))
    .addOption(new Option('--pod-name <name>', 'for the gRPC node id').env('MESHPILOT_POD_NAME'))
    .option('--labels <json>', 'the workload\'s labels, for the gRPC node metadata', labels, {})
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .addOption(logFormatOption())
    .action(async (o: AgentFlags, cmd: Command) => {
      // Loaded here, not at the top: the rest of the command line does without gRPC and x509.
      const [{ createLogger }, { startAgent }, { quietGrpcBindLog }] = await Promise.all([import('../log.ts'), import('./agent.ts'), import('../grpc-bind-log.ts')]);
      quietGrpcBindLog();
      const log = createLogger(o.logLevel, o.logFormat);
      if (!o.namespace || !o.serviceAccount) cmd.error('error: give --namespace and --service-account (or MESHPILOT_POD_NAMESPACE and MESHPILOT_SERVICE_ACCOUNT)');
      if (o.grpcBootstrap && (!o.xdsAddress || !o.podIp || !o.podName)) cmd.error('error: --grpc-bootstrap needs --xds-address, --pod-ip and --pod-name');
      let agent;
      try {
        agent = await startAgent({
          identity: { trustDomain: o.trustDomain, namespace: o.namespace!, serviceAccount: o.serviceAccount! },
          ca: { address: o.caAddress, caRootPem: readRoots(o.caRoot), ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}), ...(o.caServerName ? { serverName: o.caServerName } : {}) },
          outDir: o.outDir,
          validitySeconds: Math.max(1, Math.round(o.certTtl / 1000)),
          ...(o.sdsSocket ? { sdsSocket: o.sdsSocket } : {}),
          ...(o.readyListen ? { readyListen: o.readyListen } : {}),
          ...(o.grpcBootstrap ? { grpcBootstrap: { file: o.grpcBootstrap, xdsAddress: o.xdsAddress!, creds: o.xdsChannelCreds, podIp: o.podIp!, podName: o.podName!, labels: o.labels } } : {}),
          logger: log,
        });
      } catch (e) {
        cmd.error(`error: ${(e as Error).message}`);
      }
      const stop = async () => {
        await agent!.stop();
        log.info('agent: stopped');
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

/**
 * The configured roots, re-read on each request (a ConfigMap mount is updated in place); the last
 * good text when the file is briefly unreadable, and an error at start when it never was.
 */
function readRoots(file: string): () => string {
  let last = fs.readFileSync(file, 'utf8');
  return () => {
    try {
      last = fs.readFileSync(file, 'utf8');
    } catch {
      // keep the last good text
    }
    return last;
  };
}
