// Writes a meshpilot config directory for running backends: one ServiceEntry
// per service (endpoints = the real backends), one DestinationRule per service
// (subsets by version label), and the test's own rules.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import type { BackendInfo } from './backends.ts';

export const MESH_NAMESPACE = 'default';
export const SERVICE_PORT = 9080;
export const PORT_NAME = 'grpc';

export interface MeshFileOptions {
  /** Namespace of every service (default 'default'). */
  namespace?: string;
  /** Subsets defined for every service (default v1, v2, v3). */
  subsets?: readonly string[];
  /** Locality written on every endpoint (default 'us-east/zone-a'). */
  locality?: string;
  /** File name of the extra rules (default 'rules.yaml'). */
  rulesFile?: string;
}

export interface MeshFiles {
  services: string;
  destinationRules: string;
  /** Absent when no rules were given. */
  rules?: string;
}

/** `reviews` -> `reviews.default.svc.cluster.local` */
export function hostOf(service: string, namespace = MESH_NAMESPACE): string {
  return `${service}.${namespace}.svc.cluster.local`;
}

/** `reviews` -> `xds:///reviews.default.svc.cluster.local:9080` */
export function targetOf(service: string, namespace = MESH_NAMESPACE): string {
  return `xds:///${hostOf(service, namespace)}:${SERVICE_PORT}`;
}

function toYamlDocs(objects: unknown[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

export function serviceEntriesYaml(
  backends: readonly BackendInfo[],
  opts: MeshFileOptions = {},
): string {
  const namespace = opts.namespace ?? MESH_NAMESPACE;
  const locality = opts.locality ?? 'us-east/zone-a';
  const services = [...new Set(backends.map((b) => b.service))].sort();
  return toYamlDocs(
    services.map((service) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: service, namespace },
      spec: {
        hosts: [hostOf(service, namespace)],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: SERVICE_PORT, name: PORT_NAME, protocol: 'GRPC' }],
        endpoints: backends
          .filter((b) => b.service === service)
          .map((b) => ({
            address: '127.0.0.1',
            ports: { [PORT_NAME]: b.port },
            labels: { app: b.service, version: b.version },
            locality,
          })),
      },
    })),
  );
}

export function destinationRulesYaml(
  backends: readonly BackendInfo[],
  opts: MeshFileOptions = {},
): string {
  const namespace = opts.namespace ?? MESH_NAMESPACE;
  const subsets = opts.subsets ?? ['v1', 'v2', 'v3'];
  const services = [...new Set(backends.map((b) => b.service))].sort();
  return toYamlDocs(
    services.map((service) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: service, namespace },
      spec: {
        host: hostOf(service, namespace),
        subsets: subsets.map((name) => ({ name, labels: { version: name } })),
      },
    })),
  );
}

/**
 * Writes services.yaml, destination-rules.yaml and (if non-empty) the rules
 * into dir, creating dir if needed. Returns the paths written.
 */
export async function writeMeshDir(
  dir: string,
  backends: readonly BackendInfo[],
  rules = '',
  opts: MeshFileOptions = {},
): Promise<MeshFiles> {
  await mkdir(dir, { recursive: true });
  const files: MeshFiles = {
    services: await replaceFile(dir, 'services.yaml', serviceEntriesYaml(backends, opts)),
    destinationRules: await replaceFile(dir, 'destination-rules.yaml', destinationRulesYaml(backends, opts)),
  };
  if (rules.trim() !== '') {
    files.rules = await replaceFile(dir, opts.rulesFile ?? 'rules.yaml', rules);
  }
  return files;
}

/**
 * Replaces dir/name in one step: the text goes to a hidden temp file in the
 * same directory (not ending in .yaml, so a watcher filtering on the suffix
 * skips it) and is renamed over the target, so a watcher never reads a
 * half-written file. Returns the file's path.
 */
export async function replaceFile(dir: string, name: string, text: string): Promise<string> {
  const target = path.join(dir, name);
  const temp = path.join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text);
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return target;
}
