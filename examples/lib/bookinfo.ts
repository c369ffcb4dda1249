// Reading and adapting the example mesh in examples/bookinfo/.
//
// The example files name fixed ports; the demo runs real instances on free
// ports, so it works on a copy whose endpoint ports are replaced. Edits go
// through the yaml Document API so the comments in the files survive.
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, parseAllDocuments, type Document } from 'yaml';

export const BOOKINFO_DIR = fileURLToPath(new URL('../bookinfo', import.meta.url));
export const SERVICES_FILE = 'services.yaml';
export const CANARY_FILE = 'reviews-canary.yaml';

/** One endpoint of the example mesh: which instance, at which example port. */
export interface ExampleEndpoint {
  service: string;
  version: string;
  port: number;
}

type PortOf = (service: string, version: string) => number;

function parseDocs(text: string, file: string): Document[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error(`${file}: no YAML documents`);
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
  }
  return docs.filter((doc) => doc.contents !== null);
}

function joinDocs(docs: Document[]): string {
  return docs
    .map((doc, i) => {
      // Every document after the first starts with its own '---' marker.
      if (i > 0 && doc.directives) doc.directives.docStart = true;
      return doc.toString({ lineWidth: 0 });
    })
    .join('');
}

interface EndpointJson {
  ports?: Record<string, number>;
  labels?: Record<string, string>;
}

/** Lists the ServiceEntry endpoints of services.yaml by app/version label. */
export function listEndpoints(servicesYaml: string): ExampleEndpoint[] {
  const result: ExampleEndpoint[] = [];
  for (const doc of parseDocs(servicesYaml, SERVICES_FILE)) {
    const obj = doc.toJS() as { kind?: string; spec?: { endpoints?: EndpointJson[] } } | null;
    if (obj?.kind !== 'ServiceEntry') continue;
    for (const ep of obj.spec?.endpoints ?? []) {
      const service = ep.labels?.app;
      const version = ep.labels?.version;
      const port = Object.values(ep.ports ?? {})[0];
      if (service && version && typeof port === 'number') result.push({ service, version, port });
    }
  }
  return result;
}

export async function readExampleEndpoints(srcDir = BOOKINFO_DIR): Promise<ExampleEndpoint[]> {
  return listEndpoints(await readFile(path.join(srcDir, SERVICES_FILE), 'utf8'));
}

/** services.yaml with every endpoint port replaced by portOf(app, version). */
export function replaceEndpointPorts(servicesYaml: string, portOf: PortOf): string {
  const docs = parseDocs(servicesYaml, SERVICES_FILE);
  for (const doc of docs) {
    if (doc.get('kind') !== 'ServiceEntry') continue;
    const endpoints = doc.getIn(['spec', 'endpoints']);
    if (!isSeq(endpoints)) continue;
    for (const ep of endpoints.items) {
      if (!isMap(ep)) continue;
      const service = String(ep.getIn(['labels', 'app']));
      const version = String(ep.getIn(['labels', 'version']));
      const ports = ep.get('ports');
      if (!isMap(ports)) continue;
      for (const pair of ports.items) {
        ports.set(pair.key, portOf(service, version));
      }
    }
  }
  return joinDocs(docs);
}

/**
 * Copies every YAML file of srcDir into destDir, with the endpoint ports in
 * services.yaml replaced by the real ones.
 */
export async function materializeConfig(srcDir: string, destDir: string, portOf: PortOf): Promise<void> {
  await mkdir(destDir, { recursive: true });
  for (const name of await readdir(srcDir)) {
    if (!/\.ya?ml$/.test(name)) continue;
    const from = path.join(srcDir, name);
    const to = path.join(destDir, name);
    if (name === SERVICES_FILE) {
      await writeFile(to, replaceEndpointPorts(await readFile(from, 'utf8'), portOf));
    } else {
      await copyFile(from, to);
    }
  }
}

/**
 * Sets the weights of the named http route of a VirtualService file:
 * weights maps subset name -> weight. Destinations of other subsets keep theirs.
 */
export function setRouteWeights(vsYaml: string, routeName: string, weights: Record<string, number>): string {
  const docs = parseDocs(vsYaml, 'VirtualService');
  let found = false;
  for (const doc of docs) {
    if (doc.get('kind') !== 'VirtualService') continue;
    const http = doc.getIn(['spec', 'http']);
    if (!isSeq(http)) continue;
    for (const route of http.items) {
      if (!isMap(route) || route.get('name') !== routeName) continue;
      const dests = route.get('route');
      if (!isSeq(dests)) continue;
      for (const dest of dests.items) {
        if (!isMap(dest)) continue;
        const subset = dest.getIn(['destination', 'subset']);
        if (typeof subset === 'string' && subset in weights) {
          dest.set('weight', weights[subset]);
          found = true;
        }
      }
    }
  }
  if (!found) throw new Error(`no route named ${routeName} with subsets ${Object.keys(weights).join(', ')}`);
  return joinDocs(docs);
}
