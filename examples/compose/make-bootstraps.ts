// Writes what the compose example's pods take from sidecar injection's own code, so the two cannot
// drift (test/compose-example.test.ts fails when a file is out of date):
// - envoy/<workload>.yaml: each sidecar's Envoy bootstrap, as injection writes it
//   (control-plane/inject/bootstrap.ts), with what the kubelet would fill in (IP, name, namespace,
//   service account) given as literal values. ADS goes over mutual TLS to meshpilot's TLS port
//   (xds.tls, the injection default), at a name its serving certificate carries (XDS below); Envoy
//   presents the workload certificate its agent serves over SDS (cluster sds-grpc, the shared socket).
// - init/redirect.sh: the iptables redirect injection's meshpilot-init runs
//   (control-plane/inject/init-container.ts), run by each `<workload>-init` container.
// - tokens/ca-tokens and tokens/<workload>: DEMO bootstrap tokens (meshpilot's --ca-tokens file,
//   and the one each agent sends). Public, in git: they are not secrets, never use them elsewhere.
//
//   npx tsx examples/compose/make-bootstraps.ts          # rewrite the files
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { agentContainer } from '../../control-plane/inject/agent-container.ts';
import { bootstrapObject } from '../../control-plane/inject/bootstrap.ts';
import { loadInjectionConfig, type InjectionConfig } from '../../control-plane/inject/config.ts';
import { initContainer } from '../../control-plane/inject/init-container.ts';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const NAMESPACE = 'default';
/**
 * meshpilot's xDS and CA, as the sidecars and agents reach it: a compose network alias of the
 * `meshpilot` service (compose.yaml) that is one of the DNS names in meshpilot's serving certificate
 * (control-plane/ca/tls-credentials.ts XDS_SERVER_NAMES): Envoy and the agent check that name.
 * The bare compose name `meshpilot` is not in the certificate. caPort: `serve --xds-listen`.
 */
export const XDS = { address: 'meshpilot.meshpilot-system.svc', caPort: 15012 };
/** The service port every service of the example uses. */
export const SERVICE_PORT = 9080;
/** Where compose.yaml mounts the CA's volume: meshpilot's --ca-dir, read-only in the agents. */
export const CA_DIR = '/var/lib/meshpilot-ca';
/** The CA writes its roots here on first start (control-plane/ca/root-store.ts BUNDLE); the agents' --ca-root. */
export const CA_ROOT = `${CA_DIR}/trust-bundle.pem`;

export interface Workload {
  /** The compose service of the app; its pod is `<name>` (netns owner), `<name>-init`, `<name>-agent`, `<name>-envoy`. */
  name: string;
  ip: string;
  labels: { app: string; version: string };
  serviceAccount: string;
}

// The fixed addresses compose.yaml gives the pods (their netns owners) on the `mesh` network
// (10.213.0.0/24); rules/services.yaml and rules/client.yaml list the same ones.
export const WORKLOADS: Workload[] = [
  { name: 'client', ip: '10.213.0.10', labels: { app: 'client', version: 'v1' }, serviceAccount: 'client' },
  { name: 'productpage-v1', ip: '10.213.0.11', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'productpage' },
  { name: 'reviews-v1', ip: '10.213.0.21', labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'reviews' },
  { name: 'reviews-v2', ip: '10.213.0.22', labels: { app: 'reviews', version: 'v2' }, serviceAccount: 'reviews' },
  { name: 'reviews-v3', ip: '10.213.0.23', labels: { app: 'reviews', version: 'v3' }, serviceAccount: 'reviews' },
  { name: 'ratings-v1', ip: '10.213.0.31', labels: { app: 'ratings', version: 'v1' }, serviceAccount: 'ratings' },
  { name: 'details-v1', ip: '10.213.0.41', labels: { app: 'details', version: 'v1' }, serviceAccount: 'details' },
];

/** Injection's settings with meshpilot's address as compose reaches it; everything else as injection.yaml says. */
export function composeInjectionConfig(): InjectionConfig {
  const base = loadInjectionConfig();
  return { ...base, xds: { ...base.xds, address: XDS.address, caPort: XDS.caPort, tls: true } };
}

/** One workload's bootstrap, as an object (what envoy/<name>.yaml holds). */
export function composeBootstrap(w: Workload, config: InjectionConfig = composeInjectionConfig()): Record<string, any> {
  const values: Record<string, string> = { podIp: w.ip, podName: w.name, podNamespace: NAMESPACE, serviceAccount: w.serviceAccount };
  let text = JSON.stringify(bootstrapObject(config, { labels: w.labels }));
  for (const [k, v] of Object.entries(values)) text = text.replaceAll(`@@${k}@@`, v);
  if (text.includes('@@')) throw new Error(`make-bootstraps: a placeholder was not filled in: ${text.match(/@@\w+@@/)![0]}`);
  return JSON.parse(text) as Record<string, any>;
}

export function bootstrapFile(w: Workload): string {
  return path.join(HERE, 'envoy', `${w.name}.yaml`);
}

export function bootstrapText(w: Workload, config?: InjectionConfig): string {
  const header = [
    `# Envoy bootstrap of the ${w.name} sidecar (compose service ${w.name}-envoy).`,
    '# Generated by examples/compose/make-bootstraps.ts: do not edit, run `npx tsx examples/compose/make-bootstraps.ts`.',
    '',
  ].join('\n');
  return header + stringify(composeBootstrap(w, config), { lineWidth: 0, aliasDuplicateObjects: false });
}

/** The redirect script of injection's init container, for a pod without overrides (the same for every workload). */
export function redirectScript(config: InjectionConfig = composeInjectionConfig()): string {
  const c = initContainer(config, { requests: {}, limits: {}, excludeInboundPorts: [], excludeOutboundPorts: [], excludeOutboundCIDRs: [] });
  const [shell, dashC, script] = c.command!;
  if (shell !== '/bin/sh' || dashC !== '-c' || !script) throw new Error('make-bootstraps: the init container is no longer `/bin/sh -c <script>`');
  return script;
}

export const REDIRECT_FILE = path.join(HERE, 'init', 'redirect.sh');
export function redirectText(config?: InjectionConfig): string {
  return [
    '# The iptables redirect of the compose pods, run by each `<workload>-init` container (compose.yaml).',
    '# Generated by examples/compose/make-bootstraps.ts from control-plane/inject/init-container.ts: do not edit.',
    redirectScript(config),
    '',
  ].join('\n');
}

/** The agent's arguments, as injection gives them, but trusting the CA's bundle from its shared volume. */
export function agentArgs(config: InjectionConfig = composeInjectionConfig()): string[] {
  const args = [...agentContainer(config).args!];
  const i = args.indexOf('--ca-root');
  if (i < 0) throw new Error('make-bootstraps: the agent has no --ca-root');
  args[i + 1] = CA_ROOT;
  return args;
}

// DEMO tokens: in git, so anyone can read them. They let a container get a certificate for its
// service account from this example's CA and nothing else; never reuse them.
export const tokenOf = (w: Workload) => `demo-not-secret-${w.name}-token`;
export const CA_TOKENS_FILE = path.join(HERE, 'tokens', 'ca-tokens');
export const agentTokenFile = (w: Workload) => path.join(HERE, 'tokens', w.name);

export function caTokensText(): string {
  return [
    '# meshpilot serve --ca-tokens: one "token namespace serviceAccount" per line, one per workload.',
    '# DEMO TOKENS, public in git: they are not secrets. Never use them outside this example.',
    '# Generated by examples/compose/make-bootstraps.ts (tokens/<workload> holds each agent\'s own).',
    ...WORKLOADS.map((w) => `${tokenOf(w)} ${NAMESPACE} ${w.serviceAccount}`),
    '',
  ].join('\n');
}

export function agentTokenText(w: Workload): string {
  return `${tokenOf(w)}\n`;
}

/** Every generated file and its text. */
export function generatedFiles(): Array<[string, string]> {
  return [
    ...WORKLOADS.map((w) => [bootstrapFile(w), bootstrapText(w)] as [string, string]),
    [REDIRECT_FILE, redirectText()],
    [CA_TOKENS_FILE, caTokensText()],
    ...WORKLOADS.map((w) => [agentTokenFile(w), agentTokenText(w)] as [string, string]),
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [file, text] of generatedFiles()) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}
