// serve's start-up work, phase by phase, in one process (a child of bench/startup.ts):
//   node --import tsx bench/serve-phases.ts DIR SERVICES
// Runs the build's own functions (dist/, as `meshpilot serve` does) one after the other and prints
// one JSON line of milliseconds: reading + validating the rule files
// (FileConfigSource.load), compiling the model, loading Envoy's protos, and for the first Envoy
// sidecar and the first proxyless gRPC client: translating their config, then checking and encoding
// each resource (what the snapshot cache does on a first request). serve itself logs none of these
// phases separately, so they are measured here, on the same machine in the same bench run.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dist = (p: string): Promise<unknown> => import(pathToFileURL(path.join(root, 'dist', p)).href);

const [dir, services] = [process.argv[2]!, Number(process.argv[3])];
const ms: Record<string, number> = {};
let t = performance.now();
const mark = (phase: string) => {
  const now = performance.now();
  ms[phase] = now - t;
  t = now;
};

const { FileConfigSource } = (await dist('config/file-source.js')) as typeof import('../control-plane/config/file-source.ts');
const { compile } = (await dist('model/compile.js')) as typeof import('../control-plane/model/compile.ts');
const { ModelMemo } = (await dist('model/build.js')) as typeof import('../control-plane/model/build.ts');
const { translate } = (await dist('translate/translate.js')) as typeof import('../control-plane/translate/translate.ts');
const { TranslateMemo } = (await dist('translate/memo.js')) as typeof import('../control-plane/translate/memo.ts');
const { proxyFromNode } = (await dist('translate/proxy.js')) as typeof import('../control-plane/translate/proxy.ts');
const { checkAndEncode } = (await dist('envoy/check.js')) as typeof import('../control-plane/envoy/check.ts');
const { getRoot } = (await dist('envoy/protos.js')) as typeof import('../control-plane/envoy/protos.ts');
const { TYPE_ORDER } = (await dist('translate/type-urls.js')) as typeof import('../control-plane/translate/type-urls.ts');
// Imports are timed by serve-startup.ts in a node without tsx's loader, which slows them down.
t = performance.now();

const load = new FileConfigSource(dir).load();
mark('read + parse + validate the rule files');
const state = compile(load, [], new ModelMemo());
mark('compile the model');
if (state.model.services.length !== services) throw new Error(`serve-phases: ${state.model.services.length} services compiled, expected ${services}`);
getRoot();
mark("load Envoy's protos");

// Each client with a translator memory of its own: in the bench each is the first client of its serve.
const clients = {
  sidecar: proxyFromNode({ id: 'sidecar~10.0.0.1~startup-client.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'startup-client' } }, user_agent_name: 'envoy' }),
  'gRPC client': proxyFromNode({ id: 'startup-grpc-client', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'startup-grpc-client' } } }),
};
const counts: Record<string, number> = {};
for (const [name, proxy] of Object.entries(clients)) {
  const resources = translate(state.model, proxy, new TranslateMemo());
  mark(`${name}: translate`);
  let n = 0;
  for (const type of TYPE_ORDER) {
    for (const json of resources[type]) {
      const r = checkAndEncode(json);
      if ('violations' in r) throw new Error(`serve-phases: ${type} fails the check: ${JSON.stringify(r.violations)}`);
      n++;
    }
  }
  mark(`${name}: check + encode`);
  counts[name] = n;
}
console.log(JSON.stringify({ ms, resources: counts }));
process.exit(0);
