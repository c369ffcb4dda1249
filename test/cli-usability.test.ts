// What a new user meets first: --version, one line (exit 1) for a port in use, readable logs on a
// terminal (--log-format pretty), the admin URL, and a line when serve stops. The CLI runs as a
// child process, as a user runs it; the formatter, version lookup and error wording as units.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { formatLogLine, prettyDestination } from '../control-plane/observe/pretty-log.ts';
import { adminHint, adminUrl } from '../control-plane/observe/admin-url.ts';
import { ListenError, listenError } from '../control-plane/listen-error.ts';
import { findPackageVersion } from '../control-plane/version.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = path.resolve('bin/meshpilot.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-usability-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Child {
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

function meshpilot(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  let both = '';
  child.stdout.on('data', (d) => ((out += d), (both += d)));
  child.stderr.on('data', (d) => ((err += d), (both += d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { output: () => both, stdout: () => out, stderr: () => err, exited, kill: (s) => child.kill(s) };
}

/** A port some other process holds for the test's duration. */
async function occupiedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return (s.address() as net.AddressInfo).port;
}

// A fixed local time, so the expected text does not depend on the machine's time zone.
const AT = new Date(2025, 0, 2, 14, 3, 7, 123).getTime();

describe('pretty log lines', () => {
  it('formats pino JSON as local time, level, message and key=value fields', () => {
    const line = JSON.stringify({ level: 30, time: AT, pid: 42, hostname: 'h', app: 'meshpilot', address: '127.0.0.1:15010', tls: false, msg: 'xDS (ADS) server listening' });
    expect(formatLogLine(line)).toBe('14:03:07.123 INFO  xDS (ADS) server listening address=127.0.0.1:15010 tls=false');
    expect(formatLogLine(JSON.stringify({ level: 40, time: AT, msg: 'rule rejected', error: 'rules.yaml:3:1 spec.hosts: required' })))
      .toBe('14:03:07.123 WARN  rule rejected error="rules.yaml:3:1 spec.hosts: required"');
    expect(formatLogLine(JSON.stringify({ level: 20, time: AT, msg: 'x', counts: { a: 1 }, names: ['r1', 'r2'], empty: '' })))
      .toBe('14:03:07.123 DEBUG x counts={"a":1} names=["r1","r2"] empty=""');
    expect(formatLogLine(JSON.stringify({ level: 60, time: AT, msg: 'm' }))).toBe('14:03:07.123 FATAL m');
    expect(formatLogLine(JSON.stringify({ level: 30, time: AT, msg: 'admin API: http://127.0.0.1:15014  (try /debug/proxies, /debug/rules)' })))
      .toBe('14:03:07.123 INFO  admin API: http://127.0.0.1:15014  (try /debug/proxies, /debug/rules)');
  });

  it('puts an error\'s message in the line and its stack frames under it; keeps non-JSON as it is', () => {
    const err = { type: 'Error', message: 'listen EADDRINUSE', stack: 'Error: listen EADDRINUSE\n    at a (x.ts:1:2)\n    at b (y.ts:3:4)' };
    expect(formatLogLine(JSON.stringify({ level: 50, time: AT, msg: 'webhook request failed', err })))
      .toBe('14:03:07.123 ERROR webhook request failed err="listen EADDRINUSE"\n    at a (x.ts:1:2)\n    at b (y.ts:3:4)');
    expect(formatLogLine('not json\n')).toBe('not json');
    expect(formatLogLine(JSON.stringify({ level: 30, time: AT, msg: 'm' }), { color: true })).toBe('14:03:07.123 \x1b[32mINFO \x1b[0m m');
  });

  it('is a pino destination: one formatted line per log call', () => {
    const written: string[] = [];
    const log = pino({ level: 'info', base: { app: 'meshpilot' }, timestamp: () => `,"time":${AT}` }, prettyDestination({ write: (t: string) => written.push(t) }));
    log.info({ generation: 3 }, 'configuration applied');
    log.debug('not at this level');
    log.error(new Error('boom'), 'failed');
    expect(written[0]).toBe('14:03:07.123 INFO  configuration applied generation=3\n');
    expect(written[1]).toMatch(/^14:03:07\.123 ERROR failed err=boom\n {4}at .+\n/);
    expect(written).toHaveLength(2);
  });
});

describe('small parts', () => {
  it('finds the version in the nearest package.json named meshpilot, from the sources or a compiled copy', () => {
    const root = fs.mkdtempSync(path.join(tmp, 'pkg-'));
    fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'meshpilot', version: '9.8.7' }));
    const deep = path.join(root, 'dist', 'control-plane');
    fs.mkdirSync(deep, { recursive: true });
    // A package.json of another name on the way up (e.g. dist's {"type": "module"}) is skipped.
    fs.writeFileSync(path.join(root, 'dist', 'package.json'), JSON.stringify({ type: 'module' }));
    expect(findPackageVersion(deep)).toBe('9.8.7');
    expect(findPackageVersion(path.join(root, 'control-plane'))).toBe('9.8.7');
    expect(findPackageVersion(deep, 'someone-else')).toBeUndefined();
  });

  it('words a failed bind as one line naming the address', () => {
    const grpcStyle = new Error('No address added out of total 1 resolved errors: [listen EADDRINUSE: address already in use 127.0.0.1:15010]');
    expect(listenError('127.0.0.1:15010', grpcStyle).message).toBe('cannot listen on 127.0.0.1:15010: address already in use');
    const nodeStyle = Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES' });
    expect(listenError('0.0.0.0:80', nodeStyle)).toBeInstanceOf(ListenError);
    expect(listenError('0.0.0.0:80', nodeStyle).message).toBe('cannot listen on 0.0.0.0:80: permission denied');
    expect(listenError('10.9.9.9:1', new Error('something else')).message).toBe('cannot listen on 10.9.9.9:1: something else');
  });

  it('prints the admin URL plainly', () => {
    expect(adminUrl('127.0.0.1:15014')).toBe('http://127.0.0.1:15014');
    expect(adminUrl('::1:15014')).toBe('http://[::1]:15014');
    expect(adminHint('127.0.0.1:4242')).toBe('admin API: http://127.0.0.1:4242  (open it in a browser for the dashboard; try /debug/proxies, /debug/rules)');
  });
});

describe('the CLI as a new user meets it', () => {
  it('meshpilot --version prints the package version', async () => {
    const c = meshpilot(['--version']);
    expect(await c.exited).toBe(0);
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string };
    expect(c.stdout().trim()).toBe(pkg.version);
  });

  it('serve: a port in use is one line on stderr and exit 1, for the xDS, plaintext xDS and admin listeners', async () => {
    const port = await occupiedPort();
    const at = `127.0.0.1:${port}`;
    const base = ['serve', '--config-dir', 'examples/bookinfo'];
    const cases = [
      [...base, '--xds-listen', at, '--admin-listen', '127.0.0.1:0'],
      [...base, '--xds-listen', '127.0.0.1:0', '--admin-listen', at],
      [...base, '--xds-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--xds-tls', '--ca-dir', fs.mkdtempSync(path.join(tmp, 'ca-')), '--xds-plaintext-listen', at],
    ];
    const children = cases.map((args) => meshpilot(args));
    for (const c of children) {
      expect(await c.exited, c.output()).toBe(1);
      expect(c.stderr()).toBe(`error: cannot listen on ${at}: address already in use\n`);
    }
  });

  it('webhook and agent: a port in use is one line on stderr and exit 1', async () => {
    const port = await occupiedPort();
    const at = `127.0.0.1:${port}`;
    const root = path.join(tmp, 'root.pem');
    fs.writeFileSync(root, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    const webhook = meshpilot(['webhook', '--listen', at, '--cert-dir', path.join(tmp, 'no-cert')]);
    const agent = meshpilot(['agent', '--ca-address', '127.0.0.1:1', '--ca-root', root, '--namespace', 'shop', '--service-account', 'web', '--out-dir', path.join(tmp, 'agent-out'), '--no-sds-socket', '--ready-listen', at]);
    for (const c of [webhook, agent]) {
      expect(await c.exited, c.output()).toBe(1);
      expect(c.stderr()).toBe(`error: cannot listen on ${at}: address already in use\n`);
    }
  });

  it('serve --log-format pretty: readable lines, the admin URL, and a line when stopping on SIGTERM', async () => {
    const c = meshpilot(['serve', '--config-dir', 'examples/bookinfo', '--xds-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--log-format', 'pretty']);
    await waitFor(() => /admin API: http:\/\/127\.0\.0\.1:\d+ /.test(c.stdout()), { timeoutMs: 30_000, description: `admin URL printed; output: ${c.output()}` });
    const lines = c.stdout().trimEnd().split('\n');
    expect(lines.find((l) => l.includes('xDS (ADS) server listening'))).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}xDS \(ADS\) server listening address=127\.0\.0\.1:\d+ tls=false$/);
    const hint = lines.find((l) => l.includes('admin API: '))!;
    expect(hint).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}admin API: http:\/\/127\.0\.0\.1:\d+ {2}\(open it in a browser for the dashboard; try \/debug\/proxies, \/debug\/rules\)$/);
    for (const l of lines) expect(l).not.toMatch(/^\{/);
    // The URL works.
    const url = /admin API: (http:\/\/\S+)/.exec(hint)![1]!;
    expect((await fetch(`${url}/debug/proxies`)).status).toBe(200);
    c.kill('SIGTERM');
    expect(await c.exited).toBe(0);
    const tail = c.stdout().trimEnd().split('\n').slice(-2);
    expect(tail[0]).toMatch(/INFO {2}meshpilot: stopping \(SIGTERM\)$/);
    expect(tail[1]).toMatch(/INFO {2}meshpilot: stopped$/);
    expect(c.stderr()).toBe('');
  });

  it('serve logs JSON when stdout is not a terminal, including the stop lines (SIGINT)', async () => {
    const c = meshpilot(['serve', '--config-dir', 'examples/bookinfo', '--xds-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    await waitFor(() => c.stdout().includes('admin API: http://'), { timeoutMs: 30_000, description: `admin URL logged; output: ${c.output()}` });
    c.kill('SIGINT');
    expect(await c.exited).toBe(0);
    const msgs = c.stdout().trimEnd().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs.slice(-2)).toEqual(['meshpilot: stopping (SIGINT)', 'meshpilot: stopped']);
  });
});
