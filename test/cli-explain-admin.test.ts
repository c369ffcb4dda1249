// `meshpilot explain --admin URL`: the built CLI asks a running control plane (POST /debug/explain)
// instead of compiling rule files, so the answer is what is served now: a proxy connected under
// --from's node id is explained with the identity it connected with, and the text is the server's
// own. Flag mistakes and an unreachable or refusing control plane are one clear line each.
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { LISTENER } from '../control-plane/translate/type-urls.ts';
import { RawAdsClient, toStruct } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';
import { meshpilot } from './helpers/cli-run.ts';

const RULES = path.resolve('examples/bookinfo');
const NODE_ID = 'sidecar~10.9.0.7~productpage-v1-1.default~default.svc.cluster.local';

/** A port nothing listens on (the OS gave it, then it was closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

let cp: ControlPlane;
let admin: string;
let ads: RawAdsClient;

beforeAll(async () => {
  cp = await startControlPlane({ configDir: RULES, xdsListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logger: silentLogger, debounceMs: 20 });
  admin = `http://${cp.adminAddress}`;
  // A sidecar whose labels say it is productpage v2 (no endpoint of the mesh has its IP).
  ads = new RawAdsClient(cp.xdsAddress);
  ads.send({ node: { id: NODE_ID, metadata: toStruct({ NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v2' } }), user_agent_name: 'envoy' }, type_url: LISTENER, resource_names: [] });
  await ads.next();
  await waitFor(async () => ((await (await fetch(`${admin}/debug/proxies`)).json()) as { proxies: unknown[] }).proxies.length === 1, { description: 'the sidecar listed' });
});

afterAll(async () => {
  ads?.close();
  await cp?.stop();
});

const JASON = ['GET http://reviews:9080/reviews/1', '-H', 'end-user: jason'];

describe('explain --admin', () => {
  it("prints the running control plane's own explanation, with a connected proxy's identity", async () => {
    const r = await meshpilot(['explain', '--admin', admin, '--from', NODE_ID, ...JASON]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`the connected proxy ${NODE_ID}`);
    expect(r.stdout).toContain('version=v2');
    const server = await (await fetch(`${admin}/debug/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ request: JASON[0], from: NODE_ID, headers: [JASON[2]], text: true }) })).json();
    expect(r.stdout).toBe(server.text);
    // As JSON: the same explanation, its fields as the admin API gives them.
    const j = await meshpilot(['explain', '--admin', admin, '--from', NODE_ID, '--json', ...JASON]);
    expect(j.code).toBe(0);
    const parsed = JSON.parse(j.stdout);
    expect(parsed.caller).toEqual(server.caller);
    expect(parsed.destinations.map((d: { cluster: string }) => d.cluster)).toEqual(server.destinations.map((d: { cluster: string }) => d.cluster));
    expect(parsed.text).toBeUndefined();
  });

  it('answers as the rule files do for the same caller (serve without a CA: no TLS lines)', async () => {
    const args = ['--from', 'default/productpage', ...JASON];
    const remote = await meshpilot(['explain', '--admin', admin, ...args]);
    const local = await meshpilot(['explain', '--config-dir', RULES, ...args]);
    expect(remote.code).toBe(0);
    expect(local.code).toBe(0);
    const withoutTls = (text: string) => text.split('\n').filter((l) => !/^ {4}tls: /.test(l)).join('\n');
    expect(remote.stdout).toBe(withoutTls(local.stdout));
    expect(remote.stdout).toMatch(/reviews\.default\.svc\.cluster\.local subset v2/);
  });

  it('takes MESHPILOT_ADMIN when no --config-dir is given; --config-dir wins over it', async () => {
    const env = await meshpilot(['explain', '--from', NODE_ID, ...JASON], { MESHPILOT_ADMIN: admin });
    expect(env.code).toBe(0);
    expect(env.stdout).toContain(`the connected proxy ${NODE_ID}`);
    const files = await meshpilot(['explain', '--config-dir', RULES, '--from', NODE_ID, ...JASON], { MESHPILOT_ADMIN: admin });
    expect(files.code).toBe(0);
    expect(files.stdout).not.toContain('the connected proxy');
  });

  it('one line for each mistake: both sources, neither, a files-only flag, an unreachable or refusing control plane', async () => {
    const both = await meshpilot(['explain', '--config-dir', RULES, '--admin', admin, ...JASON]);
    expect(both.code).not.toBe(0);
    expect(both.stderr.trim()).toBe('error: give --config-dir (rule files) or --admin (a running control plane), not both');
    const neither = await meshpilot(['explain', ...JASON]);
    expect(neither.code).not.toBe(0);
    expect(neither.stderr.trim()).toBe('error: give --config-dir DIR (explain the rules in files) or --admin URL (ask a running control plane; also MESHPILOT_ADMIN)');
    const stateDir = await meshpilot(['explain', '--admin', admin, '--state-dir', '/tmp', ...JASON]);
    expect(stateDir.code).not.toBe(0);
    expect(stateDir.stderr.trim()).toBe('error: --state-dir is for --config-dir; with --admin the control plane uses its own');
    const closed = await closedPort();
    const down = await meshpilot(['explain', '--admin', `http://127.0.0.1:${closed}`, ...JASON]);
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toBe(`error: cannot reach the admin API at http://127.0.0.1:${closed} (connection refused): check --admin: serve prints its admin address at start ("admin API: ...")`);
    const bad = await meshpilot(['explain', '--admin', admin, 'FETCH reviews']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: /);
    expect(bad.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});
