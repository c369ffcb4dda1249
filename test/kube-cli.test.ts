// `meshpilot serve --config-dir X --kubeconfig Y` in a child process, as an operator runs it: both
// sources at once, the cluster's health in /readyz and /healthz, one log line per cluster up/down.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseClusterFlag, parseClustersFile } from '../control-plane/kube/cluster-flags.ts';
import { FakeApiServer } from './helpers/fake-apiserver.ts';
import { nodeObject, serviceObject } from './helpers/kube-objects.ts';
import { spawnServe } from './helpers/serve-process.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const teardown = new Teardown();
afterEach(() => teardown.run());

const serve = (args: string[]) => spawnServe(teardown, args);

describe('meshpilot serve with a cluster', () => {
  it('serves files and a cluster at once and reports the cluster going down and up', async () => {
    const api = await FakeApiServer.start('east');
    teardown.add(() => api.close());
    api.apply(nodeObject('n1', 'us-east', 'us-east-1a'));
    api.apply(serviceObject('reviews'));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshpilot-kube-cli-'));
    teardown.add(() => rmSync(dir, { recursive: true, force: true }));
    const kubeconfig = path.join(dir, 'kubeconfig.yaml');
    writeFileSync(kubeconfig, api.kubeconfig());
    const rules = path.join(dir, 'rules');
    cpSync('examples/bookinfo', rules, { recursive: true });

    const { lines } = serve(['--config-dir', rules, '--kubeconfig', kubeconfig, '--cluster-name', 'east']);
    await waitFor(() => lines.some((l) => l['msg'] === 'admin API listening'), { description: 'admin up', timeoutMs: 20_000 });
    const admin = String(lines.find((l) => l['msg'] === 'admin API listening')!['address']);
    await waitFor(async () => (await fetch(`http://${admin}/readyz`)).status === 200, { description: 'ready' });
    const rulesInForce = (await (await fetch(`http://${admin}/debug/rules`)).json()) as { inForce: Array<{ key: string; source: string }> };
    expect(rulesInForce.inForce.find((r) => r.key === 'ServiceEntry/default/k8s.reviews')?.source).toMatch(/^k8s:\/\/east\/Service\/default\/reviews:/);
    expect(rulesInForce.inForce.some((r) => r.source.startsWith(rules))).toBe(true);
    expect(lines.some((l) => l['msg'] === 'cluster connected' && l['cluster'] === 'east')).toBe(true);

    await api.stop();
    await waitFor(() => lines.some((l) => l['msg'] === 'cluster unreachable; keeping its last known services and endpoints, retrying'), { description: 'down logged' });
    const health = (await (await fetch(`http://${admin}/healthz`)).json()) as { status: string; components: Array<{ name: string; degraded?: boolean }> };
    expect(health.status).toBe('degraded');
    expect(health.components.find((c) => c.name === 'cluster/east')?.degraded).toBe(true);
    const ready = await fetch(`http://${admin}/readyz`);
    expect(ready.status).toBe(200); // still serving its last state
    const east = ((await ready.json()) as { components: Array<Record<string, unknown>> }).components.find((c) => c['name'] === 'cluster/east')!;
    expect(east['detail']).toMatch(/^unreachable, serving its last known state: /);
    expect(east['degraded']).toBe(true);
    // The README promises the last error time (ISO).
    expect(String(east['lastErrorAt'])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(east['origin']).toBe(`--kubeconfig ${kubeconfig}`);
    await api.restart();
    await waitFor(() => lines.filter((l) => l['msg'] === 'cluster connected').length === 2, { description: 'up logged again' });
    expect(lines.filter((l) => String(l['msg']).startsWith('cluster unreachable')).length).toBe(1); // one line per transition
  });

  it('parses --cluster flags and says what is wrong with a bad one', () => {
    expect(parseClusterFlag('name=west,kubeconfig=/k/west,network=net2,gateway=10.0.0.1:15443')).toEqual({ name: 'west', kubeconfig: '/k/west', network: 'net2', gateway: '10.0.0.1:15443' });
    expect(() => parseClusterFlag('name=west')).toThrow(/kubeconfig= is required/);
    expect(() => parseClusterFlag('name=West,kubeconfig=x')).toThrow(/name= is required/);
    expect(() => parseClusterFlag('name=w,kubeconfig=x,gateway=nope')).toThrow(/gateway must be host:port/);
    // gRPC takes only IP literals in EDS: a gateway by host name would be NACKed, so it is refused here.
    expect(() => parseClusterFlag('name=w,kubeconfig=x,gateway=gw.example:15443')).toThrow(/gateway address must be an IP address/);
    expect(() => parseClusterFlag('name=w,kubeconfig=x,zone=a')).toThrow(/unknown key "zone"/);
  });

  it('reads a clusters file, kubeconfig paths relative to it, errors naming the entry', () => {
    const text = 'clusters:\n- { name: west, kubeconfig: west.yaml, network: net2, gateway: "10.0.0.1:15443" }\n- { name: south, kubeconfig: /abs/south.yaml }\n';
    expect(parseClustersFile('/etc/meshpilot/clusters.yaml', text)).toEqual([
      { name: 'west', kubeconfig: '/etc/meshpilot/west.yaml', network: 'net2', gateway: '10.0.0.1:15443' },
      { name: 'south', kubeconfig: '/abs/south.yaml' },
    ]);
    expect(() => parseClustersFile('/c.yaml', 'clusters:\n- { name: west }\n')).toThrow('/c.yaml: clusters[0]: kubeconfig= is required');
    expect(() => parseClustersFile('/c.yaml', 'clusters:\n- { name: west, kubeconfig: k, port: 1 }\n')).toThrow('/c.yaml: clusters[0].port: expected a string');
    expect(() => parseClustersFile('/c.yaml', 'west: {}\n')).toThrow('expected a list under "clusters"');
  });
});
