// One mesh per end-to-end test: a fresh config directory with the backends' ServiceEntries and
// the test's rule files, a control plane on it, and clients; everything registered with a
// Teardown that stops it after the test, newest first.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../control-plane/server.ts';
import type { BackendInfo } from './backends.ts';
import { replaceFile, writeMeshDir, type MeshFileOptions } from './mesh-files.ts';
import { createXdsClient, type XdsClient, type XdsClientOptions } from './xds-client.ts';
import { waitFor } from './wait.ts';

export type Step = () => Promise<void> | void;

export class Teardown {
  private steps: Step[] = [];

  add(step: Step): void {
    this.steps.push(step);
  }

  /** Runs every step, newest first, even after a failure; then throws the first error. */
  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

export interface TestMesh {
  dir: string;
  cp: ControlPlane;
  file(name: string): string;
  /** A proxyless client of this mesh (on the plaintext xDS address when there is one). */
  client(opts?: Omit<XdsClientOptions, 'xdsAddress'>): XdsClient;
}

export async function startTestMesh(
  teardown: Teardown,
  opts: {
    backends: readonly BackendInfo[];
    files: Record<string, string>;
    prefix: string;
    meshFiles?: MeshFileOptions;
    logLevel?: string;
    /** Network -> gateways, as `serve --network-gateway` gives them. */
    networkGateways?: Record<string, Array<{ address: string; port: number }>>;
    /** More control-plane options (e.g. xdsTls, xdsPlaintextListen). */
    controlPlane?: Partial<ControlPlaneOptions>;
  },
): Promise<TestMesh> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `meshpilot-${opts.prefix}-`));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  await writeMeshDir(dir, opts.backends, '', opts.meshFiles);
  for (const [name, text] of Object.entries(opts.files)) await replaceFile(dir, name, text);
  const cp = await startControlPlane({
    configDir: dir,
    xdsListen: '127.0.0.1:0',
    adminListen: null,
    debounceMs: 20,
    logLevel: process.env.MESHPILOT_TEST_LOG_LEVEL ?? opts.logLevel ?? 'error',
    ...(opts.networkGateways ? { networkGateways: opts.networkGateways } : {}),
    ...opts.controlPlane,
  });
  teardown.add(() => cp.stop());
  return {
    dir,
    cp,
    file: (name) => path.join(dir, name),
    client(clientOpts = {}) {
      // grpc-js-xds cannot do TLS to the xDS server: with --xds-tls it uses the plaintext listener.
      const client = createXdsClient({ xdsAddress: cp.xdsPlaintextAddress ?? cp.xdsAddress, ...clientOpts });
      teardown.add(() => client.close());
      return client;
    },
  };
}

/** Waits until every connected stream has ACKed each type it was last sent: clients route by the newest config. */
export async function streamsSynced(cp: Pick<ControlPlane, 'ads'>, timeoutMs = 10_000): Promise<void> {
  const streams = () => [...cp.ads.streams].map((s) => s.status());
  await waitFor(() => streams().length > 0 && streams().every((st) => Object.values(st).every((t) => t.sentVersion !== undefined && t.ackedVersion === t.sentVersion)), {
    timeoutMs,
    description: 'every client to ACK the newest config',
  });
}
