// Checks of a rendered Kubernetes install (the documents `kubectl kustomize` prints), as a list of
// problems ([] when the install holds together). They read the manifests the way the cluster and
// meshpilot will: objects against the Kubernetes schema, every reference to an object that must
// exist, every port from the API server's or a client's side down to the address the process
// listens on (parsed from its args, defaults from its --help), and RBAC against the API calls the
// code makes. Pure functions, so a test can feed them a broken install and see the problem named.
import { DEFAULT_ROOT_CONFIGMAP } from '../../control-plane/ca/root-publisher.ts';
import { PLUGIN_SECRET, ROOT_SECRET } from '../../control-plane/ca/secret-store.ts';
import { RULE_RESOURCES } from '../../control-plane/kube/rule-resources.ts';
import { kubernetesProblems } from './k8s-schema.ts';

/** One YAML document of the install. */
export type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

/** A command-line option from --help: whether it takes a value, and its default. */
export interface Flag { takesValue: boolean; default?: string }
/** Subcommand -> its options. */
export type CliFlags = Record<string, Map<string, Flag>>;

export interface InstallContext {
  flags: CliFlags;
  /** sidecar-config/injection.yaml: where injected pods dial, and the meshpilot image they run. */
  injection: { xds: { address: string; port: number; caPort: number }; agent: { image: string; version: string; tokenAudience: string } };
}

/** The options in a commander --help text (wrapped descriptions joined). */
export function parseHelpFlags(help: string): Map<string, Flag> {
  const out = new Map<string, Flag>();
  const blocks: string[] = [];
  for (const line of help.split('\n')) {
    if (/^ {2}(?:-\w, )?--/.test(line)) blocks.push(line);
    else if (/^ {3,}\S/.test(line) && blocks.length) blocks[blocks.length - 1] += ` ${line.trim()}`;
  }
  for (const b of blocks) {
    const m = /^ {2}(?:-\w, )?(--[a-z0-9-]+)( <[^>]+>| \[[^\]]+\])?/.exec(b)!;
    const def = /\(default: "([^"]*)"\)/.exec(b.replace(/\s+/g, ' '));
    out.set(m[1]!, { takesValue: Boolean(m[2]), ...(def ? { default: def[1]! } : {}) });
  }
  return out;
}

const CLUSTER_SCOPED = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'ClusterIssuer']);
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const groupOf = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0]! : '');
const keyOf = (o: Obj) => `${groupOf(o.apiVersion) || 'core'}/${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  Boolean(selector && Object.keys(selector).length) && Object.entries(selector!).every(([k, v]) => labels?.[k] === v);

/** An address a process listens on, from a `--*listen` option (given, or its default). */
interface Listener { flag: string; host: string; port: number }

/** The parsed args of a meshpilot container: subcommand, option values (last wins), listeners. */
interface Command { sub: string; values: Map<string, string | true>; listeners: Listener[] }

function parseArgs(args: string[], flags: CliFlags, where: string, problems: string[]): Command | undefined {
  const sub = args[0];
  const known = sub !== undefined ? flags[sub] : undefined;
  if (!known) {
    problems.push(`${where}: args must start with a meshpilot subcommand (${Object.keys(flags).join(', ')}), got ${JSON.stringify(sub)}`);
    return undefined;
  }
  const values = new Map<string, string | true>();
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      problems.push(`${where}: unexpected argument ${JSON.stringify(a)} (not an option, nor an option's value)`);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    const flag = known.get(name);
    if (!flag) {
      problems.push(`${where}: \`meshpilot ${sub}\` has no option ${name} (see \`meshpilot ${sub} --help\`)`);
      continue;
    }
    if (eq >= 0) {
      if (!flag.takesValue) problems.push(`${where}: ${name} takes no value, got ${JSON.stringify(a)}`);
      values.set(name, a.slice(eq + 1));
    } else if (flag.takesValue) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--')) problems.push(`${where}: ${name} needs a value`);
      else values.set(name, v);
      i++;
    } else values.set(name, true);
  }
  const listeners: Listener[] = [];
  for (const [name, flag] of known) {
    if (!name.endsWith('-listen')) continue;
    const v = values.get(name) ?? flag.default;
    if (typeof v !== 'string') continue;
    const i = v.lastIndexOf(':');
    listeners.push({ flag: name, host: v.slice(0, i), port: Number(v.slice(i + 1)) });
  }
  return { sub, values, listeners };
}

const valueOf = (c: Command, flags: CliFlags, name: string): string | undefined => {
  const v = c.values.get(name);
  return typeof v === 'string' ? v : v === true ? undefined : flags[c.sub]?.get(name)?.default;
};

/** A container of a Deployment, with what its args say. */
interface Container { deploy: Obj; spec: any; where: string; cmd?: Command }

/** The container port (number) a probe or Service port names (by name or number), if declared. */
function containerPort(c: Container, port: unknown): number | undefined {
  const ports: Array<{ name?: string; containerPort: number }> = c.spec.ports ?? [];
  return typeof port === 'number' ? ports.find((p) => p.containerPort === port)?.containerPort : ports.find((p) => p.name === port)?.containerPort;
}

/** One API call the code makes: group, resource, verb, namespace ('*': every one), object name if fixed. */
interface Call { group: string; resource: string; verb: string; ns: string; name?: string }

/** The API calls `meshpilot <sub>` makes with these args (read from the code under control-plane/). */
function neededCalls(c: Command, flags: CliFlags, podNamespace: string): Call[] {
  const calls: Call[] = [];
  const add = (group: string, resources: string[], verbs: string[], ns = '*', name?: string) => {
    for (const resource of resources) for (const verb of verbs) calls.push({ group, resource, verb, ns, ...(name ? { name } : {}) });
  };
  if (c.sub === 'serve') {
    const cluster = c.values.has('--in-cluster') || c.values.has('--kubeconfig');
    if (!cluster) return calls;
    // kube/cluster.ts: informers over every namespace.
    add('', ['services', 'pods', 'nodes'], ['list', 'watch']);
    add('discovery.k8s.io', ['endpointslices'], ['list', 'watch']);
    // kube/rules.ts and kube/rule-status.ts: the rule kinds, and their Accepted condition.
    for (const r of RULE_RESOURCES) {
      add(r.group, [r.plural], ['list', 'watch']);
      add(r.group, [`${r.plural}/status`], ['patch']);
    }
    // credentials/kube-credentials.ts: TLS Secrets for credentialName, in every namespace.
    add('', ['secrets'], ['list', 'watch']);
    const secretsNs = valueOf(c, flags, '--cluster-secrets-namespace');
    if (secretsNs) add('', ['secrets'], ['list', 'watch'], secretsNs); // kube-source.ts: cluster registrations
    if (c.values.has('--xds-tls')) {
      add('authentication.k8s.io', ['tokenreviews'], ['create']); // ca/token-review.ts
      const caNs = valueOf(c, flags, '--ca-namespace')!;
      // ca/secret-store.ts: the plug-in CA is read; the root Secret read, created, rewritten on rotation.
      add('', ['secrets'], ['get'], caNs, PLUGIN_SECRET);
      add('', ['secrets'], ['get', 'update'], caNs, ROOT_SECRET);
      add('', ['secrets'], ['create'], caNs);
      // ca/root-publisher.ts: Namespaces watched; the trust bundle ConfigMap listed/watched by field
      // selector in every namespace, created where missing, replaced when it differs.
      add('', ['namespaces'], ['list', 'watch']);
      add('', ['configmaps'], ['list', 'watch', 'create']);
      add('', ['configmaps'], ['update'], '*', DEFAULT_ROOT_CONFIGMAP);
    }
    // Leader election among replicas: a Lease in the pod's own namespace.
    add('coordination.k8s.io', ['leases'], ['get', 'create', 'update'], podNamespace);
  } else if (c.sub === 'webhook') {
    if (c.values.has('--namespace-labels')) return calls;
    add('', ['namespaces'], ['get']); // webhook/namespace-labels.ts
    const config = valueOf(c, flags, '--webhook-config');
    if (config) add('admissionregistration.k8s.io', ['mutatingwebhookconfigurations'], ['get', 'patch'], '*', config); // webhook/ca-bundle.ts
  }
  return calls;
}

/** Every problem with the install; [] when it holds together. */
export function installProblems(objs: Obj[], ctx: InstallContext): string[] {
  const problems: string[] = [];
  const find = (kind: string, name: string, ns?: string) => objs.find((o) => o.kind === kind && o.metadata?.name === name && (ns === undefined || o.metadata.namespace === ns));

  // Identity: one object per group, kind, namespace and name (else the later one silently wins).
  const seen = new Set<string>();
  for (const o of objs) {
    const k = keyOf(o);
    if (seen.has(k)) problems.push(`${k}: defined twice`);
    seen.add(k);
  }

  // Schema, and every namespaced object in a namespace of the install.
  for (const o of objs) {
    if (groupOf(o.apiVersion) === 'cert-manager.io') problems.push(...certManagerProblems(o, objs));
    else for (const p of kubernetesProblems(o)) problems.push(`${keyOf(o)}: ${p}`);
    if (CLUSTER_SCOPED.has(o.kind)) {
      if (o.metadata.namespace) problems.push(`${keyOf(o)}: cluster-scoped, has a namespace`);
    } else if (!o.metadata.namespace) problems.push(`${keyOf(o)}: no namespace`);
    else if (!find('Namespace', o.metadata.namespace)) problems.push(`${keyOf(o)}: namespace ${o.metadata.namespace} is not in the install`);
  }

  const deployments = objs.filter((o) => o.kind === 'Deployment');
  const containers: Container[] = [];
  const image = `${ctx.injection.agent.image}:${ctx.injection.agent.version}`;
  for (const d of deployments) {
    const where = keyOf(d);
    const pod = d.spec?.template?.spec ?? {};
    const ns = d.metadata.namespace!;
    if (!selects(d.spec?.selector?.matchLabels, d.spec?.template?.metadata?.labels)) problems.push(`${where}: selector does not match the pod template's labels`);
    if (!pod.serviceAccountName) problems.push(`${where}: no serviceAccountName (would run as default)`);
    else if (!find('ServiceAccount', pod.serviceAccountName, ns)) problems.push(`${where}: ServiceAccount ${pod.serviceAccountName} is not in the install`);
    if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${where}: pod securityContext.runAsNonRoot is not true`);
    const volumes: any[] = pod.volumes ?? [];
    const mounted = new Set<string>();
    for (const spec of pod.containers ?? []) {
      const c: Container = { deploy: d, spec, where: `${where} container ${spec.name}` };
      containers.push(c);
      if (spec.image !== image) problems.push(`${c.where}: image ${spec.image}, expected ${image} (injection.yaml agent.image:version)`);
      const sc = spec.securityContext ?? {};
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${c.where}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${c.where}: allowPrivilegeEscalation is not false`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${c.where}: capabilities do not drop ALL`);
      for (const r of ['requests.cpu', 'requests.memory', 'limits.memory']) {
        const [a, b] = r.split('.') as [string, string];
        if (!spec.resources?.[a]?.[b]) problems.push(`${c.where}: no resources.${r}`);
      }
      for (const m of spec.volumeMounts ?? []) {
        mounted.add(m.name);
        if (!volumes.some((v) => v.name === m.name)) problems.push(`${c.where}: mounts volume ${m.name}, which the pod does not have`);
      }
      for (const e of spec.env ?? []) {
        const ref = e.valueFrom?.configMapKeyRef ?? e.valueFrom?.secretKeyRef;
        if (ref && !ref.optional) problems.push(...missingSource(e.valueFrom.configMapKeyRef ? 'ConfigMap' : 'Secret', ref.name, ns, objs, `${c.where} env ${e.name}`));
      }
      if (!Array.isArray(spec.args)) problems.push(`${c.where}: no args (the image's entrypoint is meshpilot itself: args start with the subcommand)`);
      else c.cmd = parseArgs(spec.args, ctx.flags, c.where, problems);
      // Every declared port is one the process listens on beyond loopback, and every probe names one.
      if (c.cmd) {
        for (const p of spec.ports ?? []) {
          if (!c.cmd.listeners.some((l) => l.port === p.containerPort && !LOOPBACK.has(l.host))) {
            problems.push(`${c.where}: port ${p.name ?? ''} ${p.containerPort} is not an address ${c.cmd.sub} listens on beyond loopback (${c.cmd.listeners.map((l) => `${l.flag}=${l.host}:${l.port}`).join(', ')})`);
          }
        }
        for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
          const get = spec[probe]?.httpGet;
          if (spec[probe] && !get) problems.push(`${c.where}: ${probe} is not an HTTP GET`);
          if (get && containerPort(c, get.port) === undefined) problems.push(`${c.where}: ${probe} port ${get.port} is not a container port`);
        }
      }
    }
    for (const v of volumes) {
      if (!mounted.has(v.name)) problems.push(`${where}: volume ${v.name} is mounted by no container`);
      const vw = `${where} volume ${v.name}`;
      if (v.emptyDir) continue;
      if (v.configMap) { if (!v.configMap.optional) problems.push(...missingSource('ConfigMap', v.configMap.name, ns, objs, vw)); continue; }
      if (v.secret) { if (!v.secret.optional) problems.push(...missingSource('Secret', v.secret.secretName, ns, objs, vw)); continue; }
      if (v.projected) {
        for (const s of v.projected.sources ?? []) {
          if (s.configMap && !s.configMap.optional) problems.push(...missingSource('ConfigMap', s.configMap.name, ns, objs, vw));
          if (s.secret && !s.secret.optional) problems.push(...missingSource('Secret', s.secret.name, ns, objs, vw));
        }
        continue;
      }
      problems.push(`${vw}: a kind of volume these checks do not follow`);
    }
  }

  // Which containers a Service's selector reaches.
  const selected = (svc: Obj) => containers.filter((c) => c.deploy.metadata.namespace === svc.metadata.namespace && selects(svc.spec?.selector, c.deploy.spec?.template?.metadata?.labels));
  /** The container and its port behind a Service port (by number), or a problem. */
  const behind = (svc: Obj, port: number): { c: Container; port: number } | string => {
    const sp = (svc.spec?.ports ?? []).find((p: any) => p.port === port);
    if (!sp) return `${keyOf(svc)} has no port ${port}`;
    for (const c of selected(svc)) {
      const n = containerPort(c, sp.targetPort ?? sp.port);
      if (n !== undefined) return { c, port: n };
    }
    return `${keyOf(svc)} port ${port}: targetPort ${sp.targetPort ?? sp.port} is no container port of the pods it selects`;
  };

  for (const svc of objs.filter((o) => o.kind === 'Service')) {
    const sel = selected(svc);
    const deploys = new Set(sel.map((c) => c.deploy));
    if (deploys.size === 0) problems.push(`${keyOf(svc)}: its selector matches no Deployment's pods`);
    if (deploys.size > 1) problems.push(`${keyOf(svc)}: its selector matches the pods of ${deploys.size} Deployments`);
    for (const p of svc.spec?.ports ?? []) {
      const b = behind(svc, p.port);
      if (typeof b === 'string') { problems.push(b); continue; }
      const admin = b.c.cmd?.listeners.find((l) => l.flag === '--admin-listen');
      if (admin && admin.port === b.port) problems.push(`${keyOf(svc)} port ${p.port}: publishes the admin API (--admin-listen)`);
    }
  }

  for (const c of containers) {
    if (!c.cmd) continue;
    const probes = (name: string) => c.spec[name]?.httpGet;
    if (c.cmd.sub === 'serve') {
      const listener = (flag: string) => c.cmd!.listeners.find((l) => l.flag === flag);
      const admin = listener('--admin-listen');
      const monitoring = listener('--monitoring-listen');
      if (admin && !LOOPBACK.has(admin.host)) problems.push(`${c.where}: the admin API listens on ${admin.host}: it shows config dumps, rules and explain, and must stay on loopback`);
      if (!monitoring) problems.push(`${c.where}: no --monitoring-listen: probes and scrapers would need the admin API`);
      else {
        if (LOOPBACK.has(monitoring.host)) problems.push(`${c.where}: --monitoring-listen is on loopback: the kubelet cannot probe it`);
        if (admin && admin.port === monitoring.port) problems.push(`${c.where}: the admin API and the monitoring listener share port ${admin.port}`);
        const want: Record<string, string> = { startupProbe: '/healthz', livenessProbe: '/healthz', readinessProbe: '/readyz' };
        for (const [probe, path] of Object.entries(want)) {
          const get = probes(probe);
          if (!get) { if (probe !== 'startupProbe') problems.push(`${c.where}: no ${probe}`); continue; }
          if (containerPort(c, get.port) !== monitoring.port) problems.push(`${c.where}: ${probe} port ${get.port} is not the monitoring port ${monitoring.port}`);
          if (get.path !== path) problems.push(`${c.where}: ${probe} path ${get.path}, expected ${path}`);
          if (get.scheme && get.scheme !== 'HTTP') problems.push(`${c.where}: ${probe} scheme ${get.scheme}: the monitoring listener is plain HTTP`);
        }
      }
      if (!c.cmd.values.has('--xds-tls')) problems.push(`${c.where}: no --xds-tls: injected agents need the mesh CA and injected Envoys dial xDS over TLS`);
      if (valueOf(c.cmd, ctx.flags, '--ca-token-audience') !== ctx.injection.agent.tokenAudience) problems.push(`${c.where}: --ca-token-audience is not injection.yaml agent.tokenAudience (${ctx.injection.agent.tokenAudience})`);
    }
    if (c.cmd.sub === 'webhook') {
      const listen = c.cmd.listeners.find((l) => l.flag === '--listen')!;
      for (const probe of ['livenessProbe', 'readinessProbe']) {
        const get = probes(probe);
        if (!get) problems.push(`${c.where}: no ${probe}`);
        else if (containerPort(c, get.port) !== listen.port || get.scheme !== 'HTTPS' || get.path !== '/healthz') problems.push(`${c.where}: ${probe} is not HTTPS GET /healthz on the --listen port ${listen.port}`);
      }
    }
  }

  // Injected pods dial xds.address: that Service's caPort must reach `serve --xds-tls`'s
  // --xds-listen, and its port the plaintext listener.
  const [svcName, svcNs] = ctx.injection.xds.address.split('.') as [string, string];
  const xdsSvc = find('Service', svcName, svcNs);
  if (!xdsSvc) problems.push(`Service ${svcNs}/${svcName} (injection.yaml xds.address) is not in the install`);
  else {
    for (const [port, flag] of [[ctx.injection.xds.caPort, '--xds-listen'], [ctx.injection.xds.port, '--xds-plaintext-listen']] as const) {
      const b = behind(xdsSvc, port);
      if (typeof b === 'string') { problems.push(`${b} (injection.yaml xds)`); continue; }
      const l = b.c.cmd?.sub === 'serve' ? b.c.cmd.listeners.find((x) => x.flag === flag) : undefined;
      if (!l || l.port !== b.port) problems.push(`${keyOf(xdsSvc)} port ${port} leads to ${b.c.where} port ${b.port}, which is not \`serve ${flag}\``);
    }
  }

  // The webhook configuration: each webhook's Service port reaches `meshpilot webhook` on its
  // --listen port, POST /inject, and someone sets the caBundle.
  for (const mwc of objs.filter((o) => o.kind === 'MutatingWebhookConfiguration')) {
    for (const w of mwc.webhooks ?? []) {
      const where = `${keyOf(mwc)} webhook ${w.name}`;
      const ref = w.clientConfig?.service;
      if (!ref) { problems.push(`${where}: no clientConfig.service`); continue; }
      if (ref.path !== '/inject') problems.push(`${where}: path ${ref.path}, the webhook serves /inject`);
      const svc = find('Service', ref.name, ref.namespace);
      if (!svc) { problems.push(`${where}: Service ${ref.namespace}/${ref.name} is not in the install`); continue; }
      const b = behind(svc, ref.port ?? 443);
      if (typeof b === 'string') { problems.push(`${where}: ${b}`); continue; }
      const cmd = b.c.cmd;
      const listen = cmd?.listeners.find((l) => l.flag === '--listen');
      if (cmd?.sub !== 'webhook' || listen?.port !== b.port) { problems.push(`${where}: leads to ${b.c.where} port ${b.port}, which is not \`meshpilot webhook --listen\``); continue; }
      problems.push(...caBundleProblems(mwc, svc, b.c, cmd, ctx.flags, objs).map((p) => `${where}: ${p}`));
    }
  }

  problems.push(...rbacProblems(objs, containers, ctx.flags));

  for (const pdb of objs.filter((o) => o.kind === 'PodDisruptionBudget')) {
    const ds = deployments.filter((d) => d.metadata.namespace === pdb.metadata.namespace && selects(pdb.spec?.selector?.matchLabels, d.spec?.template?.metadata?.labels));
    if (ds.length !== 1) { problems.push(`${keyOf(pdb)}: selects the pods of ${ds.length} Deployments`); continue; }
    const replicas = ds[0]!.spec.replicas ?? 1;
    if (pdb.spec.maxUnavailable === 0 || (typeof pdb.spec.minAvailable === 'number' && pdb.spec.minAvailable >= replicas)) problems.push(`${keyOf(pdb)}: with ${replicas} replicas it blocks every eviction (node drains never finish)`);
  }
  return problems;
}

/** A ConfigMap or Secret a pod needs: in the install, or (a Secret) what a Certificate of the install makes. */
function missingSource(kind: 'ConfigMap' | 'Secret', name: string, ns: string, objs: Obj[], where: string): string[] {
  const there = objs.some((o) => o.metadata.namespace === ns && ((o.kind === kind && o.metadata.name === name) || (kind === 'Secret' && o.kind === 'Certificate' && o.spec?.secretName === name)));
  return there ? [] : [`${where}: ${kind} ${ns}/${name} is neither in the install nor optional`];
}

function caBundleProblems(mwc: Obj, svc: Obj, c: Container, cmd: Command, flags: CliFlags, objs: Obj[]): string[] {
  const certDir = valueOf(cmd, flags, '--cert-dir');
  const mountedSecret = (c.spec.volumeMounts ?? []).filter((m: any) => m.mountPath === certDir).map((m: any) => (c.deploy.spec.template.spec.volumes ?? []).find((v: any) => v.name === m.name)?.secret?.secretName)[0];
  const dns = `${svc.metadata.name}.${svc.metadata.namespace}.svc`;
  const injectFrom = mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'];
  if (injectFrom) {
    const [ns, name] = injectFrom.split('/');
    const cert = objs.find((o) => o.kind === 'Certificate' && o.metadata.namespace === ns && o.metadata.name === name);
    if (!cert) return [`cert-manager.io/inject-ca-from names Certificate ${injectFrom}, which is not in the install`];
    const out: string[] = [];
    if (cert.spec.secretName !== mountedSecret) out.push(`the webhook serves Secret ${mountedSecret ?? '(none)'} from ${certDir}, not ${cert.spec.secretName} (Certificate ${injectFrom}, whose CA goes into the caBundle)`);
    if (!(cert.spec.dnsNames ?? []).includes(dns)) out.push(`Certificate ${injectFrom} does not name ${dns}`);
    return out;
  }
  // The self-made CA: the webhook writes it into the caBundle itself, one replica at a time.
  if (mountedSecret) return [`the webhook serves the mounted Secret ${mountedSecret}, and nothing puts its CA into the caBundle`];
  const out: string[] = [];
  if (valueOf(cmd, flags, '--webhook-config') !== mwc.metadata.name) out.push(`the webhook makes its own CA but --webhook-config is not ${mwc.metadata.name}: nothing sets the caBundle`);
  if (valueOf(cmd, flags, '--service') !== `${svc.metadata.name}.${svc.metadata.namespace}`) out.push(`--service is not ${svc.metadata.name}.${svc.metadata.namespace}: the self-made certificate would not name ${dns}`);
  const replicas = c.deploy.spec.replicas ?? 1;
  if (replicas !== 1) out.push(`${replicas} replicas, each with its own self-made CA, overwriting each other's caBundle (mount one certificate instead)`);
  if (c.deploy.spec.strategy?.type !== 'Recreate') out.push('a rolling update would run two self-made CAs at once (strategy must be Recreate)');
  return out;
}

/** A rule as bound: where it applies ('*': every namespace). */
interface Grant { group: string; resource: string; verb: string; ns: string; names?: string[]; role: string }

function rbacProblems(objs: Obj[], containers: Container[], flags: CliFlags): string[] {
  const problems: string[] = [];
  const grants = new Map<string, Grant[]>(); // "ns/sa" -> grants
  for (const b of objs.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding')) {
    const ref = b.roleRef ?? {};
    const role = objs.find((o) => o.kind === ref.kind && o.metadata.name === ref.name && (ref.kind === 'ClusterRole' || o.metadata.namespace === b.metadata.namespace));
    if (!role) { problems.push(`${keyOf(b)}: ${ref.kind} ${ref.name} is not in the install`); continue; }
    const ns = b.kind === 'ClusterRoleBinding' ? '*' : b.metadata.namespace!;
    for (const s of b.subjects ?? []) {
      if (s.kind !== 'ServiceAccount' || !objs.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === s.name && o.metadata.namespace === s.namespace)) {
        problems.push(`${keyOf(b)}: subject ${s.kind} ${s.namespace}/${s.name} is not a ServiceAccount of the install`);
        continue;
      }
      const list = grants.get(`${s.namespace}/${s.name}`) ?? [];
      for (const r of role.rules ?? []) {
        for (const group of r.apiGroups ?? []) for (const resource of r.resources ?? []) for (const verb of r.verbs ?? []) {
          list.push({ group, resource, verb, ns, ...(r.resourceNames?.length ? { names: r.resourceNames } : {}), role: keyOf(role) });
        }
      }
      grants.set(`${s.namespace}/${s.name}`, list);
    }
  }
  const allows = (g: Grant, c: Call) => g.group === c.group && g.resource === c.resource && g.verb === c.verb && (g.ns === '*' || g.ns === c.ns) && (!g.names || (c.name !== undefined && g.names.includes(c.name)));
  const bySa = new Map<string, Call[]>();
  for (const c of containers) {
    if (!c.cmd) continue;
    const sa = `${c.deploy.metadata.namespace}/${c.deploy.spec.template.spec.serviceAccountName}`;
    bySa.set(sa, [...(bySa.get(sa) ?? []), ...neededCalls(c.cmd, flags, c.deploy.metadata.namespace!)]);
  }
  for (const [sa, calls] of bySa) {
    const have = grants.get(sa) ?? [];
    // Everything the code calls is allowed...
    for (const c of calls) {
      if (!have.some((g) => allows(g, c))) problems.push(`RBAC: ServiceAccount ${sa} may not ${c.verb} ${c.group || 'core'}/${c.resource}${c.name ? ` ${c.name}` : ''}${c.ns === '*' ? ' cluster-wide' : ` in ${c.ns}`}`);
    }
    // ...and nothing more: each grant is no wider (namespaces, names) than some call it serves.
    for (const g of have) {
      const serves = (c: Call, name: string | undefined) => c.group === g.group && c.resource === g.resource && c.verb === g.verb && (c.ns === '*' || c.ns === g.ns) && (c.name === undefined || c.name === name);
      const justified = (g.names ?? [undefined]).every((n) => calls.some((c) => serves(c, n)));
      if (!justified) problems.push(`RBAC: ${g.role} grants ${sa} ${g.verb} ${g.group || 'core'}/${g.resource}${g.names ? ` [${g.names.join(', ')}]` : ''}${g.ns === '*' ? ' cluster-wide' : ` in ${g.ns}`}, wider than any call meshpilot makes`);
    }
  }
  for (const sa of grants.keys()) if (!bySa.has(sa)) problems.push(`RBAC: ServiceAccount ${sa} has grants but runs no meshpilot container`);
  return problems;
}

const CERT_SPEC = new Set(['secretName', 'dnsNames', 'commonName', 'isCA', 'duration', 'renewBefore', 'privateKey', 'issuerRef', 'usages', 'subject']);
const DURATION = /^(\d+h)?(\d+m)?(\d+s)?$/;

/** cert-manager's kinds are not in kubernetes-models: the fields this install uses, by hand. */
function certManagerProblems(o: Obj, objs: Obj[]): string[] {
  const at = keyOf(o);
  if (o.apiVersion !== 'cert-manager.io/v1') return [`${at}: apiVersion ${o.apiVersion}, expected cert-manager.io/v1`];
  const spec = o.spec ?? {};
  if (o.kind === 'Issuer') {
    const kinds = Object.keys(spec);
    if (kinds.length !== 1 || !['selfSigned', 'ca'].includes(kinds[0]!)) return [`${at}: spec must be one of selfSigned, ca`];
    if (spec.ca && !objs.some((c) => c.kind === 'Certificate' && c.metadata.namespace === o.metadata.namespace && c.spec?.isCA && c.spec?.secretName === spec.ca.secretName)) return [`${at}: ca.secretName ${spec.ca.secretName} is made by no CA Certificate of the install`];
    return [];
  }
  if (o.kind === 'Certificate') {
    const out = Object.keys(spec).filter((k) => !CERT_SPEC.has(k)).map((k) => `${at}: spec.${k}: unknown field`);
    if (!spec.secretName) out.push(`${at}: no spec.secretName`);
    if (!spec.isCA && !(spec.dnsNames ?? []).length) out.push(`${at}: no dnsNames`);
    for (const f of ['duration', 'renewBefore']) if (spec[f] !== undefined && !DURATION.test(spec[f])) out.push(`${at}: spec.${f} ${spec[f]} is not a Go duration`);
    const ref = spec.issuerRef ?? {};
    if ((ref.group ?? 'cert-manager.io') !== 'cert-manager.io' || !objs.some((i) => i.kind === (ref.kind ?? 'Issuer') && i.metadata.name === ref.name && (ref.kind === 'ClusterIssuer' || i.metadata.namespace === o.metadata.namespace))) out.push(`${at}: issuerRef ${ref.kind ?? 'Issuer'} ${ref.name} is not in the install`);
    return out;
  }
  return [`${at}: a cert-manager kind these checks do not know`];
}
