// The mesh config file (--mesh-config): Istio's MeshConfig YAML as users paste it, the fields
// meshpilot uses, one warning for the rest, positioned errors, and the flags winning over the file.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMeshConfig } from '../control-plane/config/mesh-config.ts';
import { meshFromFlags } from '../control-plane/mesh-option.ts';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-mesh-config-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PASTED = `# as in the istio ConfigMap's mesh key
accessLogFile: /dev/stdout
enableTracing: true
trustDomain: corp.example
rootNamespace: mesh-root
outboundTrafficPolicy:
  mode: REGISTRY_ONLY
extensionProviders:
- name: http-authz
  envoyExtAuthzHttp:
    service: security/authz.security.svc.cluster.local
    port: "8000"
    timeout: 1.5s
    statusOnError: "503"
    includeHeadersInCheck: [authorization]
    headersToDownstreamOnAllow: [x-seen]
- name: grpc-authz
  envoyExtAuthzGrpc: { service: authz.security.svc.cluster.local, port: 9000, failOpen: true }
- name: otel
  opentelemetry: { service: otel.observability.svc.cluster.local, port: 4317 }
`;

describe('mesh config file', () => {
  it('reads the fields meshpilot uses and names every ignored one in one warning', () => {
    const r = parseMeshConfig('mesh.yaml', PASTED);
    expect(r.settings).toEqual({
      trustDomain: 'corp.example',
      rootNamespace: 'mesh-root',
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
      extensionProviders: [
        { name: 'http-authz', kind: 'http', service: 'security/authz.security.svc.cluster.local', port: 8000, timeoutMs: 1500, statusOnError: 503, includeRequestHeadersInCheck: ['authorization'] },
        { name: 'grpc-authz', kind: 'grpc', service: 'authz.security.svc.cluster.local', port: 9000, failOpen: true },
        { name: 'otel', kind: 'other', type: 'opentelemetry' },
      ],
    });
    expect(r.warning).toBe('mesh.yaml: ignoring MeshConfig fields meshpilot does not use: accessLogFile, enableTracing, extensionProviders[0].envoyExtAuthzHttp.headersToDownstreamOnAllow');
    expect(parseMeshConfig('m.yaml', 'trustDomain: a.b\n').warning).toBeUndefined();
    expect(parseMeshConfig('m.yaml', '').settings).toEqual({});
  });

  it('refuses bad values at their file:line:col with the field path', () => {
    const text = `trustDomain: Not_A_Domain
outboundTrafficPolicy: { mode: SOMETIMES }
extensionProviders:
- name: a
  envoyExtAuthzHttp: { service: "x y", port: 0, timeout: forever, pathPrefix: check }
- name: a
  envoyExtAuthzGrpc: { port: 9000 }
- name: both
  envoyExtAuthzGrpc: { service: s, port: 1 }
  envoyExtAuthzHttp: { service: s, port: 1 }
`;
    let message = '';
    try {
      parseMeshConfig('bad.yaml', text);
    } catch (e) {
      message = (e as Error).message;
    }
    const lines = message.split('\n').sort();
    expect(lines).toEqual([
      'bad.yaml:1:14 trustDomain: a trust domain is a DNS-like name, e.g. cluster.local',
      'bad.yaml:2:32 outboundTrafficPolicy.mode: must be ALLOW_ANY or REGISTRY_ONLY',
      'bad.yaml:5:33 extensionProviders[0].envoyExtAuthzHttp.service: write the service as <host> or <namespace>/<host>, e.g. ext-authz.foo.svc.cluster.local',
      'bad.yaml:5:46 extensionProviders[0].envoyExtAuthzHttp.port: must be a port number from 1 to 65535',
      'bad.yaml:5:58 extensionProviders[0].envoyExtAuthzHttp.timeout: invalid duration "forever": expected e.g. 10s, 0.5s, 100ms, 1m, 1h or 1m30s',
      'bad.yaml:5:79 extensionProviders[0].envoyExtAuthzHttp.pathPrefix: must start with "/"',
      'bad.yaml:6:9 extensionProviders[1].name: duplicate extension provider name "a"',
      'bad.yaml:7:3 extensionProviders[1].envoyExtAuthzGrpc.service: required field is missing',
      'bad.yaml:8:3 extensionProviders[2]: an extension provider has one type (e.g. envoyExtAuthzHttp or envoyExtAuthzGrpc), got envoyExtAuthzGrpc, envoyExtAuthzHttp',
    ].sort());
    expect(() => parseMeshConfig('y.yaml', 'a: [\n')).toThrow(/^y\.yaml:\d+:\d+: invalid YAML/);
    expect(() => parseMeshConfig('l.yaml', '- a\n')).toThrow('l.yaml:1:1: a mesh config is a map of MeshConfig fields');
  });

  it('flags typed on the command line win over the file; their defaults do not', async () => {
    const file = path.join(tmp, 'mesh.yaml');
    fs.writeFileSync(file, PASTED);
    const parse = async (args: string[]) => {
      let got: unknown;
      const cmd = new Command('x').exitOverride().option('--trust-domain <d>', '', 'cluster.local').option('--root-namespace <ns>', '', 'istio-system').option('--mesh-config <file>')
        .action(async (o, c: Command) => {
          got = await meshFromFlags(o, c, () => {});
        });
      await cmd.parseAsync(args, { from: 'user' });
      return got as { trustDomain: string; rootNamespace: string; extensionProviders?: unknown[] };
    };
    const fromFile = await parse(['--mesh-config', file]);
    expect([fromFile.trustDomain, fromFile.rootNamespace, fromFile.extensionProviders?.length]).toEqual(['corp.example', 'mesh-root', 3]);
    const typed = await parse(['--mesh-config', file, '--trust-domain', 'flag.example']);
    expect([typed.trustDomain, typed.rootNamespace]).toEqual(['flag.example', 'mesh-root']);
    const none = await parse([]);
    expect([none.trustDomain, none.rootNamespace, none.extensionProviders]).toEqual(['cluster.local', 'istio-system', undefined]);
  });

  it('validate --mesh-config: the ignored fields warning, and a bad file fails the command with positioned lines (built CLI)', async () => {
    const rules = path.join(tmp, 'rules');
    fs.mkdirSync(rules, { recursive: true });
    const good = path.join(tmp, 'good.yaml');
    fs.writeFileSync(good, PASTED);
    const ok = await run(process.execPath, ['bin/meshpilot.js', 'validate', '--config-dir', rules, '--mesh-config', good]);
    expect(ok.stdout).toContain(`warning: ${good}: ignoring MeshConfig fields meshpilot does not use: accessLogFile, enableTracing`);
    const bad = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(bad, 'extensionProviders:\n- name: x\n  envoyExtAuthzGrpc: { service: s, port: 70000 }\n');
    const err = await run(process.execPath, ['bin/meshpilot.js', 'validate', '--config-dir', rules, '--mesh-config', bad]).then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain(`error: ${bad}:3:42 extensionProviders[0].envoyExtAuthzGrpc.port: must be a port number from 1 to 65535`);
  });
});
