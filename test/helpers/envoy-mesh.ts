// A mesh for Envoy-in-the-loop tests: rule files for HTTP backends, meshpilot on them, and Envoy
// sidecars whose bootstraps come from what meshpilot generates for their node ids
// (envoy-bootstrap.ts). `sidecarConfig` is pure and is what the test without Envoy checks.
import type { MeshSettings } from '../../control-plane/model/mesh-identity.ts';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Model } from '../../control-plane/model/types.ts';
import { startControlPlane, type ControlPlane } from '../../control-plane/server.ts';
import { proxyFromNode } from '../../control-plane/translate/proxy.ts';
import { translate, type Resources } from '../../control-plane/translate/translate.ts';
import { inboundEntry, inboundTlsEntry, outboundEntry, sidecarNode, testBootstrap, type EntryListener, type Workload } from './envoy-bootstrap.ts';
import { EntryClient } from './envoy-http.ts';
import { reservePort, startEnvoy, waitForRoutes, type EnvoyProcess } from './envoy-process.ts';
import { hostOf, replaceFile } from './mesh-files.ts';
import type { Teardown } from './test-mesh.ts';
import { destinationRule, serviceEntry, yamlDocs } from './yaml-builders.ts';

type Json = Record<string, any>;

/** Every service of these meshes: one HTTP port, 9080 (so route config "9080"). */
export const HTTP_PORT = 9080;

export interface MeshBackend {
  service: string;
  version: string;
  port: number;
  /** The endpoint address in the ServiceEntry (default 127.0.0.1; a callee behind its own Envoy: that Envoy's IP). */
  address?: string;
  /** The endpoint's service account (its mesh identity, for mTLS). */
  serviceAccount?: string;
}

/** `reviews.default.svc.cluster.local:9080`, the Host header a caller sends. */
export const hostHeader = (service: string) => `${hostOf(service)}:${HTTP_PORT}`;

/** One ServiceEntry (STATIC, HTTP 9080, endpoints on loopback) and one DestinationRule (v1-v3) per service. */
export function meshYaml(backends: readonly MeshBackend[], trafficPolicies: Record<string, Json> = {}): string {
  const services = [...new Set(backends.map((b) => b.service))].sort();
  return yamlDocs(
    ...services.flatMap((service) => [
      serviceEntry({
        hosts: [hostOf(service)],
        location: 'MESH_INTERNAL',
        ports: [{ number: HTTP_PORT, name: 'http', protocol: 'HTTP' }],
        endpoints: backends
          .filter((b) => b.service === service)
          .map((b) => ({ address: b.address ?? '127.0.0.1', ports: { http: b.port }, labels: { app: service, version: b.version }, ...(b.serviceAccount ? { serviceAccount: b.serviceAccount } : {}) })),
      }),
      destinationRule({ host: hostOf(service), subsets: ['v1', 'v2', 'v3'], ...(trafficPolicies[service] ? { trafficPolicy: trafficPolicies[service] } : {}) }),
    ]),
  );
}

export interface SidecarOptions {
  /** Delta xDS instead of state of the world. */
  delta?: boolean;
  /** A caller: an outbound entry for port 9080 on 127.0.0.1:<this>. */
  outboundPort?: number;
  /** A callee: an inbound entry for this workload port, on the workload's IP. */
  inboundPort?: number;
  /** The callee's entry is the port's mTLS chain (transport socket and connection manager), not the plaintext one. */
  inboundTls?: boolean;
  /** The workload's agent SDS socket (the bootstrap's `sds-grpc` cluster). */
  sdsSocket?: string;
  /**
   * Fields the TEST adds to the inbound entry's connection manager (never meshpilot's output), e.g.
   * `forward_client_cert_details` so the backend is shown the peer identity Envoy verified.
   */
  inboundHcmPatch?: Json;
}

/** What meshpilot generates for this workload, and the test bootstrap made from it. */
export function sidecarConfig(model: Model, workload: Workload, xdsAddress: string, o: SidecarOptions): { resources: Resources; entries: EntryListener[]; bootstrap: Json } {
  const resources = translate(model, proxyFromNode(sidecarNode(workload)));
  const entries: EntryListener[] = [];
  if (o.outboundPort !== undefined) entries.push(outboundEntry(resources, HTTP_PORT, '127.0.0.1', o.outboundPort));
  if (o.inboundPort !== undefined) {
    const e = (o.inboundTls ? inboundTlsEntry : inboundEntry)(resources, o.inboundPort, workload.ip);
    entries.push(o.inboundHcmPatch ? { ...e, hcm: { ...e.hcm, ...o.inboundHcmPatch } } : e);
  }
  if (!entries.length) throw new Error('a sidecar needs an outbound or an inbound entry');
  return { resources, entries, bootstrap: testBootstrap({ workload, xdsAddress, delta: o.delta, entries, ...(o.sdsSocket ? { sdsSocket: o.sdsSocket } : {}) }) };
}

export interface EnvoyMesh {
  dir: string;
  cp: ControlPlane;
  /** Where the Envoys' ADS goes: the plaintext xDS address (with the CA: `xdsPlaintextListen`). */
  adsAddress: string;
}

export interface EnvoyMeshOptions {
  /**
   * Run the mesh CA (`xdsTls`, root kept in `<ca.dir>`, bootstrap tokens `token-<sa>` for these
   * service accounts of namespace default) and serve the Envoys' ADS on a plaintext listener too,
   * as test/helpers/identity-mesh.ts does.
   */
  ca?: { dir: string; serviceAccounts: string[] };
  /** Mesh settings (what --mesh-config gives, e.g. extension providers). */
  mesh?: MeshSettings;
}

/** A config dir with these files and meshpilot on it (xDS on 127.0.0.1:0, plaintext unless `ca`). */
export async function startEnvoyMesh(teardown: Teardown, files: Record<string, string>, o: EnvoyMeshOptions = {}): Promise<EnvoyMesh> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshpilot-envoy-e2e-'));
  teardown.add(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) await replaceFile(dir, name, text);
  let xdsTls: { dir: string; tokensFile: string } | undefined;
  if (o.ca) {
    const tokensFile = path.join(o.ca.dir, 'ca-tokens');
    await mkdir(o.ca.dir, { recursive: true });
    await writeFile(tokensFile, o.ca.serviceAccounts.map((sa) => `${caToken(sa)} default ${sa}\n`).join(''), { mode: 0o600 });
    xdsTls = { dir: path.join(o.ca.dir, 'root'), tokensFile };
  }
  const cp = await startControlPlane({
    configDir: dir,
    xdsListen: '127.0.0.1:0',
    ...(xdsTls ? { xdsTls, xdsPlaintextListen: '127.0.0.1:0' } : {}),
    adminListen: null,
    debounceMs: 20,
    logLevel: process.env.MESHPILOT_TEST_LOG_LEVEL ?? 'error',
    ...(o.mesh ? { mesh: o.mesh } : {}),
  });
  teardown.add(() => cp.stop());
  return { dir, cp, adsAddress: cp.xdsPlaintextAddress ?? cp.xdsAddress };
}

/** The bootstrap token startEnvoyMesh's CA accepts for service account `sa` of namespace default. */
export const caToken = (sa: string) => `token-${sa}`;

export interface Sidecar {
  envoy: EnvoyProcess;
  workload: Workload;
  /** For a caller: HTTP into its outbound entry. */
  client?: EntryClient;
}

/**
 * An Envoy for `workload` on meshpilot's ADS, with the entries meshpilot's config calls for,
 * ready when Envoy says LIVE and holds route config "9080" (with `readyHost` in it, for a caller).
 */
export async function startSidecar(
  teardown: Teardown,
  envoyBin: string,
  mesh: EnvoyMesh,
  workload: Workload,
  o: { delta?: boolean; caller?: boolean; inboundPort?: number; inboundTls?: boolean; inboundHcmPatch?: Json; sdsSocket?: string; readyHost?: string },
): Promise<Sidecar> {
  const outboundPort = o.caller ? await reservePort('127.0.0.1') : undefined;
  const { bootstrap } = sidecarConfig(mesh.cp.state().model, workload, mesh.adsAddress, {
    delta: o.delta,
    outboundPort,
    inboundPort: o.inboundPort,
    ...(o.inboundTls ? { inboundTls: true } : {}),
    ...(o.sdsSocket ? { sdsSocket: o.sdsSocket } : {}),
    ...(o.inboundHcmPatch ? { inboundHcmPatch: o.inboundHcmPatch } : {}),
  });
  const envoy = await startEnvoy(teardown, { envoy: envoyBin, name: workload.pod, bootstrap });
  if (outboundPort === undefined) return { envoy, workload };
  await waitForRoutes(envoy, String(HTTP_PORT), o.readyHost ?? hostHeader('reviews'));
  const client = new EntryClient('127.0.0.1', outboundPort);
  teardown.add(() => client.close());
  return { envoy, workload, client };
}
