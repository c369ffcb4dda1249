// Cluster mode: the CA's state lives in Secrets of the config cluster instead of a directory, so
// every replica (and every restart) signs with the same root.
//   Secret `cacerts`      Istio's plug-in CA (keys ca-cert.pem, ca-key.pem, root-cert.pem,
//                         cert-chain.pem): meshpilot signs as the operator's intermediate.
//   Secret `meshpilot-ca` otherwise: meshpilot's own root (keys root-cert.pem, root-key.pem,
//                         retired-roots.json, trust-bundle.pem; next-root.json and
//                         next-root-key.pem while a rotation is staged), made by the first replica to
//                         start. Creation never overwrites: a replica that loses the race (409)
//                         reads the winner's root.
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { parsePluginCa, PLUGIN_FILES, type PluginCa } from './plugin-ca.ts';
import { BUNDLE, bundleText, newRoot, NEXT, NEXT_KEY, nextJson, parseRoots, RETIRED, retiredJson, ROOT_CERT, ROOT_KEY, type RootFiles, type StagedRoot, type StoredRoot } from './root-store.ts';
import type * as x509 from '@peculiar/x509';

export const PLUGIN_SECRET = 'cacerts';
export const ROOT_SECRET = 'meshpilot-ca';
export { DEFAULT_CA_NAMESPACE } from './defaults.ts';

export type SecretCa =
  | { mode: 'plug-in'; location: string; plugin: PluginCa }
  | { mode: 'self-signed'; location: string; roots: RootFiles; store: SecretRootStore; created: boolean };

function statusOf(e: unknown): number | undefined {
  const x = e as { code?: unknown; statusCode?: unknown };
  const c = x?.code ?? x?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

function decode(s: V1Secret, key: string): string | undefined {
  const v = s.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

function encode(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
}

/** Where meshpilot's own root is kept; writes replace the Secret only if nobody changed it since. */
export class SecretRootStore {
  constructor(
    private readonly api: CoreV1Api,
    readonly namespace: string,
    /** resourceVersion of the Secret as last read or written. */
    private resourceVersion: string | undefined,
  ) {}

  get location(): string {
    return `Secret ${this.namespace}/${ROOT_SECRET}`;
  }

  /**
   * The stored state if someone else (another replica) wrote the Secret since we last read or
   * wrote it; undefined when it is as we left it.
   */
  async readIfChanged(): Promise<RootFiles | undefined> {
    const current = await this.api.readNamespacedSecret({ name: ROOT_SECRET, namespace: this.namespace });
    if (current.metadata?.resourceVersion === this.resourceVersion) return undefined;
    const roots = await rootsFrom(current, this.location);
    this.resourceVersion = current.metadata?.resourceVersion;
    return roots;
  }

  /** The whole state: the active root (its key when it changed: a rotation), the staged one, the retired roots. */
  async save(active: { cert: x509.X509Certificate; keyPem?: string }, retired: StoredRoot[], next?: StagedRoot): Promise<void> {
    const current = await this.api.readNamespacedSecret({ name: ROOT_SECRET, namespace: this.namespace });
    if (this.resourceVersion && current.metadata?.resourceVersion !== this.resourceVersion) {
      throw new Error(`${this.location} was changed by someone else (another replica rotated?); not overwriting it: restart to load it`);
    }
    const keyPem = active.keyPem ?? decode(current, ROOT_KEY);
    if (!keyPem) throw new Error(`${this.location} has no ${ROOT_KEY}`);
    const body: V1Secret = {
      ...current,
      data: encode({
        [ROOT_CERT]: active.cert.toString('pem') + '\n',
        [ROOT_KEY]: keyPem,
        [RETIRED]: retiredJson(retired),
        [BUNDLE]: bundleText(active.cert, retired, next),
        ...(next ? { [NEXT]: nextJson(next), [NEXT_KEY]: next.keyPem } : {}),
      }),
    };
    // The resourceVersion read above goes with the body: a concurrent write makes this a 409.
    const written = await this.api.replaceNamespacedSecret({ name: ROOT_SECRET, namespace: this.namespace, body });
    this.resourceVersion = written.metadata?.resourceVersion;
  }
}

async function readSecret(api: CoreV1Api, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await api.readNamespacedSecret({ name, namespace });
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw new Error(`cannot read Secret ${namespace}/${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function rootsFrom(secret: V1Secret, location: string): Promise<RootFiles> {
  const certPem = decode(secret, ROOT_CERT);
  const keyPem = decode(secret, ROOT_KEY);
  if (!certPem || !keyPem) throw new Error(`${location}: keys ${ROOT_CERT} and ${ROOT_KEY} are both required (delete the Secret to make a new root)`);
  const retired = decode(secret, RETIRED);
  const next = decode(secret, NEXT);
  const nextKey = decode(secret, NEXT_KEY);
  return parseRoots(location, {
    certPem,
    keyPem,
    ...(retired !== undefined ? { retiredJson: retired } : {}),
    ...(next !== undefined ? { nextJson: next, ...(nextKey !== undefined ? { nextKeyPem: nextKey } : {}) } : {}),
  });
}

/**
 * The CA's state from the config cluster: the plug-in CA from Secret `cacerts` when it is there,
 * else meshpilot's root from Secret `meshpilot-ca`, made (and the Secret created) when absent.
 */
export async function loadCaFromSecrets(kubeConfig: KubeConfig, namespace: string, trustDomain: string, now: number): Promise<SecretCa> {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const plugin = await readSecret(api, namespace, PLUGIN_SECRET);
  if (plugin) {
    const location = `Secret ${namespace}/${PLUGIN_SECRET}`;
    const get = (k: string) => decode(plugin, k);
    const cert = get(PLUGIN_FILES.cert);
    const key = get(PLUGIN_FILES.key);
    const root = get(PLUGIN_FILES.root);
    if (!cert || !key || !root) throw new Error(`${location}: keys ${PLUGIN_FILES.cert}, ${PLUGIN_FILES.key} and ${PLUGIN_FILES.root} are required for a plug-in CA`);
    const chain = get(PLUGIN_FILES.chain);
    return { mode: 'plug-in', location, plugin: await parsePluginCa(location, { cert, key, root, ...(chain !== undefined ? { chain } : {}) }) };
  }
  const location = `Secret ${namespace}/${ROOT_SECRET}`;
  const existing = await readSecret(api, namespace, ROOT_SECRET);
  if (existing) {
    return { mode: 'self-signed', location, roots: await rootsFrom(existing, location), store: new SecretRootStore(api, namespace, existing.metadata?.resourceVersion), created: false };
  }
  const r = await newRoot(trustDomain, now);
  const body: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: ROOT_SECRET, namespace, labels: { 'app.kubernetes.io/managed-by': 'meshpilot' } },
    data: encode({ [ROOT_CERT]: r.cert.toString('pem') + '\n', [ROOT_KEY]: r.keyPem, [RETIRED]: retiredJson([]), [BUNDLE]: bundleText(r.cert, []) }),
  };
  try {
    const made = await api.createNamespacedSecret({ namespace, body });
    return { mode: 'self-signed', location, roots: { active: { cert: r.cert, key: r.key }, retired: [] }, store: new SecretRootStore(api, namespace, made.metadata?.resourceVersion), created: true };
  } catch (e) {
    if (statusOf(e) !== 409) throw new Error(`cannot create ${location}: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Another replica created it first: its root is the mesh's root, ours is thrown away.
  const winner = await readSecret(api, namespace, ROOT_SECRET);
  if (!winner) throw new Error(`${location}: creating it answered 409 Conflict, but it cannot be read`);
  return { mode: 'self-signed', location, roots: await rootsFrom(winner, location), store: new SecretRootStore(api, namespace, winner.metadata?.resourceVersion), created: false };
}
