// examples/kubernetes/install: every overlay, rendered by `kubectl kustomize` as `kubectl apply -k`
// would, holds together (test/helpers/install-checks.ts: schema, references, ports down to the
// listening process, probes on the monitoring listener, the admin API on loopback only, the
// webhook's caBundle, RBAC equal to what the code calls, flags that exist). Then the same checks
// are shown to catch each kind of break on purpose, so a pass means something.
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { installProblems, parseHelpFlags, type CliFlags, type InstallContext, type Obj } from './helpers/install-checks.ts';

const run = promisify(execFile);
const INSTALL = path.resolve('examples/kubernetes/install');
const OVERLAYS = readdirSync(path.join(INSTALL, 'overlays')).sort();

function kubectlOnPath(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE_KUBECTL = kubectlOnPath();
if (!HAVE_KUBECTL) console.warn('kube-install.test.ts skipped: kubectl is not on PATH (it renders the overlays with its built-in kustomize: `kubectl kustomize DIR`)');

const injection = parse(readFileSync('sidecar-config/injection.yaml', 'utf8')) as InstallContext['injection'];
const rendered = new Map<string, Obj[]>();
let ctx: InstallContext;

describe.skipIf(!HAVE_KUBECTL)('examples/kubernetes/install', () => {
  beforeAll(async () => {
    const [serve, webhook, ...overlays] = await Promise.all([
      run(process.execPath, ['bin/meshpilot.js', 'serve', '--help']),
      run(process.execPath, ['bin/meshpilot.js', 'webhook', '--help']),
      ...OVERLAYS.map((o) => run('kubectl', ['kustomize', path.join(INSTALL, 'overlays', o)], { maxBuffer: 64 * 1024 * 1024 })),
    ]);
    const flags: CliFlags = { serve: parseHelpFlags(serve!.stdout), webhook: parseHelpFlags(webhook!.stdout) };
    ctx = { flags, injection };
    OVERLAYS.forEach((o, i) => rendered.set(o, parseAllDocuments(overlays[i]!.stdout).map((d) => d.toJS() as Obj)));
  }, 60_000);

  const objs = (overlay: string) => structuredClone(rendered.get(overlay)!);
  const one = (list: Obj[], kind: string, name: string) => list.find((o) => o.kind === kind && o.metadata.name === name)!;

  it('has the overlays the README names, and --help lists what the checks rely on', () => {
    expect(OVERLAYS).toEqual(expect.arrayContaining(['default', 'dev', 'cert-manager']));
    const readme = readFileSync('README.md', 'utf8');
    const named = [...readme.matchAll(/kubectl apply -k (examples\/kubernetes\/install\/overlays\/[\w-]+)/g)].map((m) => path.basename(m[1]!));
    expect([...new Set(named)].sort()).toEqual(OVERLAYS);
    expect(ctx.flags.serve!.get('--monitoring-listen')).toEqual({ takesValue: true });
    expect(ctx.flags.serve!.get('--xds-tls')).toEqual({ takesValue: false });
    expect(ctx.flags.webhook!.get('--listen')).toEqual({ takesValue: true, default: '127.0.0.1:9443' });
    expect(ctx.flags.webhook!.get('--cert-dir')).toEqual({ takesValue: true, default: '/etc/meshpilot/webhook-tls' });
  });

  it.each(OVERLAYS)('%s: holds together (schema, references, ports, probes, caBundle, RBAC, flags)', (overlay) => {
    expect(installProblems(objs(overlay), ctx)).toEqual([]);
  });

  it('default: two control-plane replicas with a PodDisruptionBudget, the webhook on its self-made CA', () => {
    const d = objs('default');
    expect(one(d, 'Deployment', 'meshpilot').spec.replicas).toBe(2);
    expect(one(d, 'PodDisruptionBudget', 'meshpilot')).toBeDefined();
    const webhook = one(d, 'Deployment', 'meshpilot-webhook');
    expect([webhook.spec.replicas, webhook.spec.strategy.type]).toEqual([1, 'Recreate']);
    expect(webhook.spec.template.spec.containers[0].args).toContain('--webhook-config=meshpilot-sidecar-injector');
    // The CRDs are part of the install, one per rule kind, straight from `npm run crds`.
    expect(d.filter((o) => o.kind === 'CustomResourceDefinition')).toHaveLength(12);
  });

  it('dev: one replica, smaller requests, no PodDisruptionBudget', () => {
    const dev = objs('dev');
    const prod = objs('default');
    expect(one(dev, 'Deployment', 'meshpilot').spec.replicas).toBe(1);
    expect(dev.some((o) => o.kind === 'PodDisruptionBudget')).toBe(false);
    const mem = (list: Obj[], name: string) => list.find((o) => o.kind === 'Deployment' && o.metadata.name === name)!.spec.template.spec.containers[0].resources.requests.memory;
    expect([mem(dev, 'meshpilot'), mem(prod, 'meshpilot')]).toEqual(['256Mi', '384Mi']);
    expect([mem(dev, 'meshpilot-webhook'), mem(prod, 'meshpilot-webhook')]).toEqual(['192Mi', '256Mi']);
  });

  it('cert-manager: two webhook replicas serving one mounted certificate, whose CA cert-manager injects', () => {
    const cm = objs('cert-manager');
    const webhook = one(cm, 'Deployment', 'meshpilot-webhook');
    expect(webhook.spec.replicas).toBe(2);
    expect(webhook.spec.strategy.type).toBe('RollingUpdate');
    expect(webhook.spec.template.spec.containers[0].args.some((a: string) => a.startsWith('--webhook-config'))).toBe(false);
    expect(one(cm, 'PodDisruptionBudget', 'meshpilot-webhook')).toBeDefined();
    expect(one(cm, 'MutatingWebhookConfiguration', 'meshpilot-sidecar-injector').metadata.annotations!['cert-manager.io/inject-ca-from']).toBe('meshpilot-system/meshpilot-webhook');
  });

  describe('the checks catch a broken install', () => {
    type Break = [string, (o: Obj[]) => void, RegExp];
    const container = (o: Obj[], name: string) => one(o, 'Deployment', name).spec.template.spec.containers[0];
    const serveArgs = (o: Obj[]) => container(o, 'meshpilot').args as string[];
    const setArg = (args: string[], flag: string, value: string | undefined) => {
      const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
      if (value === undefined) args.splice(i, 1);
      else args[i] = `${flag}=${value}`;
    };
    const role = (o: Obj[], kind: string, name: string) => one(o, kind, name).rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>;
    const BREAKS: Break[] = [
      ['an object defined twice', (o) => o.push(structuredClone(one(o, 'Service', 'meshpilot'))), /core\/Service meshpilot-system\/meshpilot: defined twice/],
      ['a misspelt field', (o) => { const c = container(o, 'meshpilot'); c.readinesProbe = c.readinessProbe; }, /readinesProbe: unknown field/],
      ['the admin API published by a Service', (o) => {
        container(o, 'meshpilot').ports.push({ name: 'http-admin', containerPort: 15000 });
        one(o, 'Service', 'meshpilot').spec.ports.push({ name: 'http-admin', port: 15000, targetPort: 'http-admin' });
      }, /port http-admin 15000 is not an address serve listens on beyond loopback[\s\S]*publishes the admin API/],
      ['the admin API on every address', (o) => setArg(serveArgs(o), '--admin-listen', '0.0.0.0:15000'), /the admin API listens on 0\.0\.0\.0/],
      ['no monitoring listener', (o) => setArg(serveArgs(o), '--monitoring-listen', undefined), /no --monitoring-listen/],
      ['a probe on another port', (o) => { container(o, 'meshpilot').readinessProbe.httpGet.port = 'grpc-xds'; }, /readinessProbe port grpc-xds is not the monitoring port 15014/],
      ['readiness on /healthz', (o) => { container(o, 'meshpilot').readinessProbe.httpGet.path = '/healthz'; }, /readinessProbe path \/healthz, expected \/readyz/],
      ['an option meshpilot does not have', (o) => serveArgs(o).push('--xds-tls-listen=0.0.0.0:15012'), /`meshpilot serve` has no option --xds-tls-listen/],
      ['a value given to a switch', (o) => setArg(serveArgs(o), '--xds-tls', 'true'), /--xds-tls takes no value/],
      ['no subcommand', (o) => serveArgs(o).shift(), /args must start with a meshpilot subcommand/],
      ['xDS TLS port to the plaintext listener', (o) => { one(o, 'Service', 'meshpilot').spec.ports.find((p: any) => p.port === 15012).targetPort = 'grpc-xds'; }, /port 15012 leads to .* port 15010, which is not `serve --xds-listen`/],
      ['no mesh CA', (o) => setArg(serveArgs(o), '--xds-tls', undefined), /no --xds-tls/],
      ['a ServiceAccount that is not there', (o) => { one(o, 'Deployment', 'meshpilot').spec.template.spec.serviceAccountName = 'meshpliot'; }, /ServiceAccount meshpliot is not in the install/],
      ['a ConfigMap that is not there', (o) => {
        const pod = one(o, 'Deployment', 'meshpilot').spec.template.spec;
        pod.volumes.push({ name: 'rules', configMap: { name: 'meshpilot-rules' } });
        pod.containers[0].volumeMounts.push({ name: 'rules', mountPath: '/etc/meshpilot/rules' });
      }, /ConfigMap meshpilot-system\/meshpilot-rules is neither in the install nor optional/],
      ['the webhook Service to the wrong port', (o) => { one(o, 'Service', 'meshpilot-webhook').spec.ports[0].targetPort = 9444; }, /targetPort 9444 is no container port/],
      ['the webhook listening elsewhere', (o) => setArg(container(o, 'meshpilot-webhook').args, '--listen', '0.0.0.0:8443'), /port https-webhook 9443 is not an address webhook listens on/],
      ['the webhook configuration calling another path', (o) => { one(o, 'MutatingWebhookConfiguration', 'meshpilot-sidecar-injector').webhooks[0].clientConfig.service.path = '/mutate'; }, /path \/mutate, the webhook serves \/inject/],
      ['the webhook configuration calling the xDS Service', (o) => { one(o, 'MutatingWebhookConfiguration', 'meshpilot-sidecar-injector').webhooks[1].clientConfig.service.name = 'meshpilot'; }, /core\/Service meshpilot-system\/meshpilot has no port 443/],
      ['two replicas of a self-made CA', (o) => { one(o, 'Deployment', 'meshpilot-webhook').spec.replicas = 2; }, /2 replicas, each with its own self-made CA/],
      ['a self-made CA nobody publishes', (o) => setArg(container(o, 'meshpilot-webhook').args, '--webhook-config', undefined), /nothing sets the caBundle/],
      ['RBAC missing a call the code makes', (o) => { role(o, 'ClusterRole', 'meshpilot').find((r) => r.resources.includes('tokenreviews'))!.verbs = []; }, /may not create authentication\.k8s\.io\/tokenreviews cluster-wide/],
      ['RBAC wider than needed', (o) => { role(o, 'ClusterRole', 'meshpilot').push({ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }); }, /grants meshpilot-system\/meshpilot get core\/secrets cluster-wide, wider than any call meshpilot makes/],
      ['RBAC update of any ConfigMap', (o) => { delete role(o, 'ClusterRole', 'meshpilot').find((r) => r.resourceNames?.includes('meshpilot-ca-root'))!.resourceNames; }, /update core\/configmaps cluster-wide, wider than any call meshpilot makes/],
      ['the webhook given the control plane\'s rights', (o) => { one(o, 'ClusterRoleBinding', 'meshpilot').subjects.push({ kind: 'ServiceAccount', name: 'meshpilot-webhook', namespace: 'meshpilot-system' }); }, /grants meshpilot-system\/meshpilot-webhook list core\/services/],
      ['no Lease for leader election', (o) => { const r = role(o, 'Role', 'meshpilot'); r.splice(r.findIndex((x) => x.resources.includes('leases')), 1); }, /may not get coordination\.k8s\.io\/leases/],
      ['a writable root filesystem', (o) => { container(o, 'meshpilot-webhook').securityContext.readOnlyRootFilesystem = false; }, /container webhook: readOnlyRootFilesystem is not true/],
      ['another image than injected agents run', (o) => { container(o, 'meshpilot').image = 'ghcr.io/example/meshpilot:latest'; }, /image ghcr\.io\/example\/meshpilot:latest, expected ghcr\.io\/example\/meshpilot:0\.1\.0/],
      ['a PodDisruptionBudget that blocks drains', (o) => { const p = one(o, 'PodDisruptionBudget', 'meshpilot'); delete p.spec.maxUnavailable; p.spec.minAvailable = 2; }, /blocks every eviction/],
    ];

    it.each(BREAKS)('%s', (_what, breakIt, expected) => {
      const o = objs('default');
      breakIt(o);
      const problems = installProblems(o, ctx);
      expect(problems.join('\n')).toMatch(expected);
    });

    it('cert-manager: a Certificate whose Secret the webhook does not serve, or that misses the Service name', () => {
      const o = objs('cert-manager');
      one(o, 'Certificate', 'meshpilot-webhook').spec.secretName = 'other-tls';
      one(o, 'Certificate', 'meshpilot-webhook').spec.dnsNames = ['meshpilot.meshpilot-system.svc'];
      const problems = installProblems(o, ctx).join('\n');
      expect(problems).toMatch(/serves Secret meshpilot-webhook-tls from \/etc\/meshpilot\/webhook-tls, not other-tls/);
      expect(problems).toMatch(/does not name meshpilot-webhook\.meshpilot-system\.svc/);
      expect(problems).toMatch(/Secret meshpilot-system\/meshpilot-webhook-tls is neither in the install nor optional/);
    });
  });
});
