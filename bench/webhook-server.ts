// Child process of bench/webhook.ts: the webhook server as `meshpilot webhook` runs it, plus its
// onAdmission hook recording how long each admission took inside the server (body parsed, pod
// injected, answer written), so the client-side figures can be told apart from machine load.
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { startWebhookServer } from '../control-plane/webhook/server.ts';

const [certPem, keyPem] = [process.env.BENCH_CERT!, process.env.BENCH_KEY!];
const seconds: number[] = [];
const server = await startWebhookServer({
  host: '127.0.0.1',
  port: 0,
  cert: { cert: certPem, key: keyPem },
  deps: { config: loadInjectionConfig(), namespaceLabels: async () => ({ 'meshpilot.io/inject': 'enabled' }) },
  onAdmission: (_outcome, s) => seconds.push(s),
});
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'reset') seconds.length = 0;
  if (m.cmd === 'stats') process.send!({ cmd: 'stats', ms: seconds.map((s) => s * 1000) });
  if (m.cmd === 'stop') void server.stop().then(() => process.exit(0));
});
process.send!({ cmd: 'ready', url: `${server.url}/inject` });
