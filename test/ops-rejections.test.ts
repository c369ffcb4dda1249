// Every rule whose newest version is not in force is visible to monitoring, whatever the reason:
// each kind of bad edit shows in /debug/rules.rejected (with its error and what stays in force)
// and in the meshpilot_rejected_rules gauge, and goes away, with a log line, when it is fixed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { getJson, metricValue, scrape } from './helpers/admin-http.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { MESH, RATINGS_9090, vs } from './helpers/protocol-fixtures.ts';
import { waitFor } from './helpers/wait.ts';

let dir: string;
let cp: ControlPlane;
let admin: string;
let logLines: Array<Record<string, any>>;

function write(name: string, text: string) {
  const tmp = path.join(dir, `.${name}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, name));
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-rejections-'));
  write('mesh.yaml', MESH);
  write('rules.yaml', vs(80, 20));
  const logs = captureLogs();
  logLines = logs.lines;
  cp = await startControlPlane({ configDir: dir, adminListen: '127.0.0.1:0', logger: logs.logger, debounceMs: 20 });
  admin = `http://${cp.adminAddress}`;
});

afterEach(async () => {
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const REVIEWS = 'VirtualService/default/reviews';

async function rules(): Promise<{ rejected: Array<{ rule: string; inForce: string; errors: string[] }>; inForce: Array<{ key: string; source: string }> }> {
  return (await getJson(`${admin}/debug/rules`)).body;
}

async function gauge(): Promise<number> {
  return metricValue(await scrape(admin), 'meshpilot_rejected_rules');
}

/** The VirtualService in force routes 80/20 still (its previous version). */
function weightsInForce(): number[] {
  const vsObj = cp.state().accepted.find((o) => o.key === REVIEWS) as any;
  return vsObj.spec.http[0].route.map((r: any) => r.weight);
}

describe('rejected rules', () => {
  const bad: Array<{ what: string; file: string; text: string; message: RegExp }> = [
    { what: 'YAML syntax', file: 'rules.yaml', text: vs(50, 50).replace('hosts: [reviews]', 'hosts: [reviews'), message: /YAML syntax error/ },
    { what: 'unknown field', file: 'rules.yaml', text: vs(50, 50).replace('hosts: [reviews]', 'hosts: [reviews]\n  hostz: [x]'), message: /hostz/ },
    { what: 'wrong type', file: 'rules.yaml', text: vs(50, 50).replace('weight: 50 }', 'weight: "fifty" }'), message: /weight/ },
    {
      what: 'bad regex',
      file: 'rules.yaml',
      text: vs(50, 50).replace('  - route:', '  - match: [{ uri: { regex: "(unclosed" } }]\n    route:'),
      message: /regex/,
    },
    { what: 'cross-object', file: 'rules.yaml', text: vs(50, 50).replace('subset: v2', 'subset: v9'), message: /subset v9 is not defined/ },
    // A second definition in a file that sorts first: the one in force stays.
    { what: 'duplicate', file: 'aaa-copy.yaml', text: vs(10, 90), message: /duplicate VirtualService default\/reviews: the one at .*rules\.yaml:\d+:\d+ stays in force/ },
  ];

  for (const c of bad) {
    it(`lists a ${c.what} edit with its error, counts it, and forgets it once fixed`, async () => {
      expect((await rules()).rejected).toEqual([]);
      write(c.file, c.text);
      await waitFor(async () => (await rules()).rejected.length > 0, { timeoutMs: 5000, description: `the ${c.what} edit to be rejected` });
      const { rejected } = await rules();
      expect(rejected.map((r) => r.rule)).toEqual([REVIEWS]);
      expect(rejected[0]!.inForce).toMatch(/rules\.yaml:\d+$/);
      expect(rejected[0]!.errors.join('\n')).toMatch(c.message);
      expect(await gauge()).toBe(1);
      expect(weightsInForce()).toEqual([80, 20]);

      if (c.file === 'rules.yaml') write('rules.yaml', vs(60, 40));
      else fs.rmSync(path.join(dir, c.file));
      await waitFor(async () => (await rules()).rejected.length === 0, { timeoutMs: 5000, description: 'the fix to be taken' });
      expect(await gauge()).toBe(0);
      if (c.file === 'rules.yaml') {
        expect(weightsInForce()).toEqual([60, 40]);
        expect(logLines.filter((l) => l.msg === 'rule accepted after being rejected').map((l) => l.rule)).toEqual([REVIEWS]);
      }
    });
  }

  it('lists the DestinationRule in force for each service, a wildcard one included', async () => {
    const body = (await getJson(`${admin}/debug/rules`)).body as { destinationRules: Record<string, string> };
    expect(body.destinationRules['reviews.default.svc.cluster.local']).toBe('DestinationRule/default/reviews');
    write('wild.yaml', 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: mesh-wide, namespace: istio-system }\nspec:\n  host: "*"\n  trafficPolicy: { loadBalancer: { simple: RANDOM } }\n' + RATINGS_9090);
    await waitFor(async () => Object.values(((await getJson(`${admin}/debug/rules`)).body as typeof body).destinationRules).includes('DestinationRule/istio-system/mesh-wide'), { timeoutMs: 5000, description: 'the wildcard rule to be in force for the services without their own' });
    const after = ((await getJson(`${admin}/debug/rules`)).body as typeof body).destinationRules;
    expect(after['reviews.default.svc.cluster.local']).toBe('DestinationRule/default/reviews');
    expect(after['ratings.default.svc.cluster.local']).toBe('DestinationRule/istio-system/mesh-wide');
  });

  it('counts a brand-new rule that fails, with nothing in force, and a new file that does not parse', async () => {
    write('new.yaml', vs(50, 50).replace('name: reviews', 'name: fresh').replace('hosts: [reviews]', 'hosts: [reviews]\n  bogus: 1'));
    write('broken.yaml', 'kind: [');
    await waitFor(async () => (await rules()).rejected.length === 2, { timeoutMs: 5000, description: 'both to be rejected' });
    const { rejected } = await rules();
    expect(rejected.map((r) => [r.rule, r.inForce]).sort()).toEqual([
      ['VirtualService/default/fresh', 'nothing'],
      [`file:${path.join(dir, 'broken.yaml')}`, 'nothing'],
    ]);
    expect(await gauge()).toBe(2);
    write('new.yaml', vs(50, 50).replace('name: reviews', 'name: fresh'));
    fs.rmSync(path.join(dir, 'broken.yaml'));
    await waitFor(async () => (await rules()).rejected.length === 0, { timeoutMs: 5000, description: 'the fixes to be taken' });
    expect(logLines.filter((l) => l.msg === 'rule accepted after being rejected').map((l) => l.rule)).toEqual(['VirtualService/default/fresh']);
  });

  it('a file that stops parsing holds each of its rules at the previous version, each listed', async () => {
    write('rules.yaml', vs(80, 20) + '---\n' + vs(70, 30).replace('name: reviews', 'name: second'));
    await waitFor(() => cp.state().accepted.some((o) => o.name === 'second'), { timeoutMs: 5000 });
    write('rules.yaml', 'http: [\n');
    await waitFor(async () => (await rules()).rejected.length === 2, { timeoutMs: 5000, description: 'both rules of the file to be listed' });
    const { rejected } = await rules();
    expect(rejected.map((r) => r.rule)).toEqual([REVIEWS, 'VirtualService/default/second']);
    for (const r of rejected) expect(r.errors.join('\n')).toMatch(/YAML syntax error/);
    expect(cp.state().accepted.filter((o) => o.kind === 'VirtualService').map((o) => o.name)).toEqual(['reviews', 'second']);
  });
});
