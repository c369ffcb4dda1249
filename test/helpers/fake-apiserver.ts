// A wire-level fake Kubernetes API server for tests: node:https on 127.0.0.1, the real REST paths
// @kubernetes/client-node uses, list with resourceVersion, watch (`?watch=true`) as newline-
// delimited JSON events replayed from a bounded history, BOOKMARK events when asked for, a too-old
// resourceVersion answered with an ERROR event carrying 410 Gone (the informer then relists), and
// the status subresource (PUT, JSON patch, merge patch), create (POST, 409 AlreadyExists) and
// replace (PUT, 409 Conflict on a stale resourceVersion) of objects, and TokenReview for service account
// tokens it handed out (`serviceAccountToken`). Label selectors and the `metadata.name` /
// `metadata.namespace` field selectors filter lists and watches; `failWhen` answers chosen requests
// with an error status (RBAC denials, overload) or never answers them (a partition). Each
// kubeconfig may name its own user (`kubeconfig('replica-a')`): requests are recorded with the user
// that sent them, so a test can tell two clients of one server apart. coordination.k8s.io/v1
// Leases are served like any other object (create, replace with resourceVersion conflicts), for
// leader election. One instance per simulated cluster.
// `stop()` / `restart()` make the server go away and come back on the same port with its store.
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import fastJsonPatch from 'fast-json-patch';
import { createCA, issueServingCert, type CertificateAuthority } from '../../control-plane/tls/certs.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; generation?: number; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

interface Resource { group: string; versions: string[]; plural: string; kind: string; namespaced: boolean; status: boolean }

const CORE: Resource[] = [
  { group: '', versions: ['v1'], plural: 'services', kind: 'Service', namespaced: true, status: true },
  { group: '', versions: ['v1'], plural: 'pods', kind: 'Pod', namespaced: true, status: true },
  { group: '', versions: ['v1'], plural: 'nodes', kind: 'Node', namespaced: false, status: true },
  { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true, status: false },
  { group: '', versions: ['v1'], plural: 'configmaps', kind: 'ConfigMap', namespaced: true, status: false },
  { group: '', versions: ['v1'], plural: 'namespaces', kind: 'Namespace', namespaced: false, status: true },
  { group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true, status: false },
  { group: 'coordination.k8s.io', versions: ['v1'], plural: 'leases', kind: 'Lease', namespaced: true, status: false },
];

const NETWORKING = ['v1', 'v1beta1', 'v1alpha3'];
/** meshpilot's kinds, as its CRDs declare them. */
export const MESH_CRDS: Resource[] = [
  { group: 'networking.istio.io', versions: NETWORKING, plural: 'virtualservices', kind: 'VirtualService', namespaced: true, status: true },
  { group: 'networking.istio.io', versions: NETWORKING, plural: 'destinationrules', kind: 'DestinationRule', namespaced: true, status: true },
  { group: 'networking.istio.io', versions: NETWORKING, plural: 'serviceentries', kind: 'ServiceEntry', namespaced: true, status: true },
  { group: 'networking.istio.io', versions: NETWORKING, plural: 'workloadentries', kind: 'WorkloadEntry', namespaced: true, status: true },
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'authorizationpolicies', kind: 'AuthorizationPolicy', namespaced: true, status: true },
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'peerauthentications', kind: 'PeerAuthentication', namespaced: true, status: true },
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'requestauthentications', kind: 'RequestAuthentication', namespaced: true, status: true },
  { group: 'networking.istio.io', versions: NETWORKING, plural: 'gateways', kind: 'Gateway', namespaced: true, status: true },
  { group: 'networking.istio.io', versions: NETWORKING, plural: 'sidecars', kind: 'Sidecar', namespaced: true, status: true },
  { group: 'traffic.meshpilot.io', versions: ['v1alpha1'], plural: 'ratelimits', kind: 'RateLimit', namespaced: true, status: true },
  { group: 'traffic.meshpilot.io', versions: ['v1alpha1'], plural: 'canaries', kind: 'Canary', namespaced: true, status: true },
  { group: 'traffic.meshpilot.io', versions: ['v1alpha1'], plural: 'faultexperiments', kind: 'FaultExperiment', namespaced: true, status: true },
];

interface WatchEvent { type: 'ADDED' | 'MODIFIED' | 'DELETED'; rv: number; resource: Resource; object: KubeObject }

interface Watcher { resource: Resource; namespace?: string; selector?: Selector; fields?: FieldSelector; version: string; res: ServerResponse; bookmarks: boolean }

type Selector = (labels: Record<string, string>) => boolean;
type FieldSelector = (o: KubeObject) => boolean;

/** `user`: the kubeconfig user whose token the request carried (`tester` by default). */
export interface RequestRecord { method: string; path: string; query: string; status: number; user: string }

const TOKEN = 'fake-apiserver-token';
const DEFAULT_USER = 'tester';

/** The user a bearer token stands for: `TOKEN` is the default user, `TOKEN.<user>` that user. */
function userOf(authorization: string | undefined): string | undefined {
  if (authorization === `Bearer ${TOKEN}`) return DEFAULT_USER;
  const prefix = `Bearer ${TOKEN}.`;
  return authorization?.startsWith(prefix) && authorization.length > prefix.length ? authorization.slice(prefix.length) : undefined;
}
/** What a token without an explicit audience is for: the API server itself. */
const API_AUDIENCE = 'https://kubernetes.default.svc';

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** `a=b,c!=d,e` (equality, inequality, existence): the subset of label selectors we use. */
function parseSelector(text: string | null): Selector | undefined {
  if (!text) return undefined;
  const terms = text.split(',').map((t) => t.trim()).filter(Boolean);
  return (labels) =>
    terms.every((t) => {
      if (t.startsWith('!')) return !(t.slice(1) in labels);
      const ne = t.indexOf('!=');
      if (ne >= 0) return labels[t.slice(0, ne)] !== t.slice(ne + 2);
      const eq = t.indexOf('=');
      if (eq >= 0) return labels[t.slice(0, eq)] === t.slice(eq + 1).replace(/^=/, '');
      return t in labels;
    });
}

/** `metadata.name=a,metadata.namespace!=b`: the field selectors every resource supports. */
function parseFieldSelector(text: string | null): FieldSelector | undefined {
  if (!text) return undefined;
  const terms = text.split(',').map((t) => t.trim()).filter(Boolean).map((t) => {
    // `type`: a Secret's type, as the API server selects Secrets by it.
    const m = /^(metadata\.name|metadata\.namespace|type)(!=|==|=)(.*)$/.exec(t);
    if (!m) throw new Error(`unsupported field selector ${t}`);
    return { field: m[1] === 'metadata.name' ? 'name' : m[1] === 'type' ? 'type' : 'namespace', negate: m[2] === '!=', value: m[3]! };
  });
  const value = (o: KubeObject, field: string) => String((field === 'type' ? (o as { type?: string }).type : o.metadata[field]) ?? '');
  return (o) => terms.every((t) => (value(o, t.field) === t.value) !== t.negate);
}

const REASONS: Record<number, string> = { 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable' };

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export class FakeApiServer {
  /** Every request served, in order (for assertions such as "the informer relisted"). */
  readonly requests: RequestRecord[] = [];
  private readonly store = new Map<string, KubeObject>(); // `${group}/${plural}/${ns}/${name}`

  private objectsOf(r: Resource): KubeObject[] {
    const prefix = `${r.group}/${r.plural}/`;
    return [...this.store].filter(([k]) => k.startsWith(prefix)).map(([, o]) => o);
  }
  private history: WatchEvent[] = [];
  /** Watches from a resourceVersion older than this get 410 Gone. */
  private oldestRv = 0;
  private rv = 1;
  private watchers = new Set<Watcher>();
  private frozen = new WeakSet<Watcher>();
  private statusFailures = 0;
  private sockets = new Set<Socket>();
  private server: https.Server;
  private port = 0;
  private readonly resources: Resource[];
  private bookmarkTimer: NodeJS.Timeout | undefined;
  /** Service account tokens this server vouches for, with the audiences they were made for. */
  private readonly saTokens = new Map<string, { namespace: string; serviceAccount: string; audiences: string[] }>();

  private constructor(readonly name: string, private readonly ca: CertificateAuthority, key: { certPem: string; keyPem: string }, opts: { crds: boolean; bookmarkIntervalMs: number }) {
    this.resources = [...CORE, ...(opts.crds ? MESH_CRDS : [])];
    this.server = https.createServer({ cert: key.certPem, key: key.keyPem }, (req, res) => {
      this.handle(req, res).catch((e) => this.send(req, res, 500, status(500, 'InternalError', String(e))));
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('secureConnection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    if (opts.bookmarkIntervalMs > 0) {
      this.bookmarkTimer = setInterval(() => this.sendBookmarks(), opts.bookmarkIntervalMs);
      this.bookmarkTimer.unref();
    }
  }

  static async start(name = 'cluster', opts: { crds?: boolean; bookmarkIntervalMs?: number } = {}): Promise<FakeApiServer> {
    const ca = await createCA(`fake-apiserver-${name}`);
    const cert = await issueServingCert(ca, { ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
    const s = new FakeApiServer(name, ca, cert, { crds: opts.crds ?? true, bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 0 });
    await s.listen();
    return s;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get caPem(): string {
    return this.ca.certPem;
  }

  /** A kubeconfig for this server (CA pinned, bearer token), as YAML text; requests with it are recorded as `user`'s. */
  kubeconfig(user = DEFAULT_USER): string {
    const ca = Buffer.from(this.ca.certPem).toString('base64');
    const token = user === DEFAULT_USER ? TOKEN : `${TOKEN}.${user}`;
    return [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{ name: ${this.name}, cluster: { server: "${this.url}", certificate-authority-data: ${ca} } }]`,
      `users: [{ name: "${user}", user: { token: "${token}" } }]`,
      `contexts: [{ name: ${this.name}, context: { cluster: ${this.name}, user: "${user}" } }]`,
      `current-context: ${this.name}`,
      '',
    ].join('\n');
  }

  /**
   * A service account token (like a projected one) for these audiences; TokenReviews of it answer
   * `system:serviceaccount:<ns>:<sa>` for the audiences asked that it carries.
   */
  serviceAccountToken(namespace: string, serviceAccount: string, audiences: string[] = [API_AUDIENCE]): string {
    const token = `sa-${randomUUID()}`;
    this.saTokens.set(token, { namespace, serviceAccount, audiences });
    return token;
  }

  /** The latest resourceVersion handed out. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Number of open watch streams (for "the watch was restarted" assertions). */
  get openWatches(): number {
    return this.watchers.size;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        const a = this.server.address();
        if (a && typeof a === 'object') this.port = a.port;
        resolve();
      });
    });
  }

  /** The server goes away: listener closed, every connection (watches included) cut. The store stays. */
  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Comes back on the same port with the same store (changes made while it was down included). */
  async restart(): Promise<void> {
    await this.listen();
  }

  /** Ends every watch stream cleanly, as an API server does when a watch times out. */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /**
   * The open watches go silent without closing, like a connection to an API server that vanished
   * without a FIN (a half-open TCP connection). New watches work normally.
   */
  freezeWatches(): void {
    for (const w of this.watchers) this.frozen.add(w);
  }

  /**
   * When set, a request it answers a status code for (403, 409, 503...) gets that error instead of
   * being served (it is recorded in `requests` like any other); one it answers `'hang'` for is
   * never answered (recorded with status 0), like a request into a network partition.
   */
  failWhen: ((req: { method: string; path: string; user: string }) => number | 'hang' | undefined) | undefined;

  /** The next `n` status writes fail with 503 (an API server under load). */
  failNextStatusWrites(n: number): void {
    this.statusFailures = n;
  }

  /** Forgets the event history: a watch resuming from an older resourceVersion then gets 410 Gone. */
  compact(): void {
    this.history = [];
    this.oldestRv = this.rv;
  }

  /** Sends a BOOKMARK (the current resourceVersion) on every watch that asked for bookmarks. */
  sendBookmarks(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const kind = w.resource.kind;
      const apiVersion = w.resource.group ? `${w.resource.group}/${w.version}` : w.version;
      this.writeEvent(w, { type: 'BOOKMARK', object: { kind, apiVersion, metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  async close(): Promise<void> {
    clearInterval(this.bookmarkTimer);
    await this.stop();
  }

  // ---- test-side store operations (like kubectl against etcd) ---------------------------------

  private resourceFor(apiVersion: string, kind: string): Resource {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    const r = this.resources.find((x) => x.group === group && x.kind === kind && x.versions.includes(version!));
    if (!r) throw new Error(`fake API server ${this.name}: no resource for ${apiVersion} ${kind}`);
    return r;
  }

  private keyOf(r: Resource, ns: string | undefined, name: string): string {
    return `${r.group}/${r.plural}/${r.namespaced ? ns ?? 'default' : ''}/${name}`;
  }

  /** Creates or replaces an object (spec changes bump metadata.generation). Returns the stored copy. */
  apply(obj: KubeObject): KubeObject {
    const r = this.resourceFor(obj.apiVersion ?? 'v1', obj.kind ?? '');
    const ns = r.namespaced ? obj.metadata.namespace ?? 'default' : undefined;
    const key = this.keyOf(r, ns, obj.metadata.name);
    const old = this.store.get(key);
    const next = clone(obj);
    next.apiVersion = r.group ? `${r.group}/${r.versions[0]}` : 'v1';
    next.metadata = { ...next.metadata, ...(ns ? { namespace: ns } : {}), uid: old?.metadata.uid ?? randomUUID(), resourceVersion: String(++this.rv) };
    const specChanged = !old || JSON.stringify(old['spec']) !== JSON.stringify(next['spec']);
    next.metadata.generation = (old?.metadata.generation ?? 0) + (specChanged ? 1 : 0);
    if (old && r.status && next['status'] === undefined && old['status'] !== undefined) next['status'] = old['status'];
    this.store.set(key, next);
    this.emit(old ? 'MODIFIED' : 'ADDED', r, next);
    return clone(next);
  }

  /** Deletes an object; returns whether it existed. */
  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): boolean {
    const r = this.resourceFor(apiVersion, kind);
    const key = this.keyOf(r, namespace, name);
    const old = this.store.get(key);
    if (!old) return false;
    this.store.delete(key);
    const gone = { ...clone(old), metadata: { ...old.metadata, resourceVersion: String(++this.rv) } };
    this.emit('DELETED', r, gone);
    return true;
  }

  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const r = this.resourceFor(apiVersion, kind);
    const o = this.store.get(this.keyOf(r, namespace, name));
    return o && clone(o);
  }

  private emit(type: WatchEvent['type'], resource: Resource, object: KubeObject): void {
    const ev: WatchEvent = { type, rv: this.rv, resource, object };
    this.history.push(ev);
    if (this.history.length > 10_000) this.oldestRv = this.history.shift()!.rv;
    for (const w of this.watchers) if (this.matches(w, ev)) this.writeEvent(w, { type, object: this.asVersion(object, resource, w.version) });
  }

  private matches(w: { resource: Resource; namespace?: string; selector?: Selector; fields?: FieldSelector }, ev: WatchEvent): boolean {
    if (ev.resource !== w.resource) return false;
    if (w.namespace !== undefined && ev.object.metadata.namespace !== w.namespace) return false;
    if (w.fields && !w.fields(ev.object)) return false;
    return !w.selector || w.selector(ev.object.metadata.labels ?? {});
  }

  private asVersion(o: KubeObject, r: Resource, version: string): KubeObject {
    return { ...clone(o), kind: r.kind, apiVersion: r.group ? `${r.group}/${version}` : version };
  }

  private writeEvent(w: Watcher, ev: { type: string; object: unknown }): void {
    if (!w.res.writableEnded && !w.res.destroyed && !this.frozen.has(w)) w.res.write(`${JSON.stringify(ev)}\n`);
  }

  // ---- HTTP -------------------------------------------------------------------------------------

  private send(req: IncomingMessage, res: ServerResponse, code: number, body: unknown): void {
    const url = new URL(req.url ?? '/', 'https://x');
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.search, status: code, user: userOf(req.headers.authorization) ?? '' });
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  /** Splits `/api/v1/...` or `/apis/<group>/<version>/...` into resource, namespace, name, subresource. */
  private route(pathname: string): { resource: Resource; version: string; namespace?: string; name?: string; sub?: string } | undefined {
    const parts = pathname.split('/').filter(Boolean);
    let group: string;
    let rest: string[];
    if (parts[0] === 'api') [group, rest] = ['', parts.slice(1)];
    else if (parts[0] === 'apis' && parts.length >= 3) [group, rest] = [parts[1]!, parts.slice(2)];
    else return undefined;
    const version = rest.shift()!;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub] = rest;
    const resource = this.resources.find((r) => r.group === group && r.plural === plural && r.versions.includes(version));
    if (!resource) return undefined;
    return { resource, version, ...(namespace !== undefined ? { namespace } : {}), ...(name ? { name } : {}), ...(sub ? { sub } : {}) };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const user = userOf(req.headers.authorization);
    if (user === undefined) return this.send(req, res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const url = new URL(req.url ?? '/', 'https://x');
    const injected = this.failWhen?.({ method: req.method ?? 'GET', path: url.pathname, user });
    if (injected === 'hang') {
      this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.search, status: 0, user });
      return;
    }
    if (injected !== undefined) {
      const reason = REASONS[injected] ?? 'Failure';
      return this.send(req, res, injected, status(injected, reason, `${reason.toLowerCase()}: ${req.method} ${url.pathname} (injected by the test)`));
    }
    if (url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') return this.tokenReview(req, res);
    const route = this.route(url.pathname);
    if (!route) return this.send(req, res, 404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
    const { resource, version, namespace, name, sub } = route;
    const method = req.method ?? 'GET';

    if (method === 'GET' && !name) {
      const selector = parseSelector(url.searchParams.get('labelSelector'));
      let fields: FieldSelector | undefined;
      try {
        fields = parseFieldSelector(url.searchParams.get('fieldSelector'));
      } catch (e) {
        return this.send(req, res, 400, status(400, 'BadRequest', String(e)));
      }
      if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') return this.watch(req, res, resource, version, namespace, selector, fields, url);
      const items = this.objectsOf(resource)
        .filter((o) => this.matches({ resource, ...(namespace !== undefined ? { namespace } : {}), ...(selector ? { selector } : {}), ...(fields ? { fields } : {}) }, { type: 'ADDED', rv: 0, resource, object: o }))
        .map((o) => this.asVersion(o, resource, version));
      return this.send(req, res, 200, { kind: `${resource.kind}List`, apiVersion: resource.group ? `${resource.group}/${version}` : version, metadata: { resourceVersion: String(this.rv) }, items });
    }
    if (method === 'POST' && !name) return this.create(req, res, resource, version, namespace);
    if (!name) return this.send(req, res, 405, status(405, 'MethodNotAllowed', `${method} on a collection is not supported here`));

    const key = this.keyOf(resource, namespace, name);
    const current = this.store.get(key);
    if (!current) return this.send(req, res, 404, status(404, 'NotFound', `${resource.plural} "${name}" not found`));
    if (method === 'GET' && !sub) return this.send(req, res, 200, this.asVersion(current, resource, version));
    if (method === 'PUT' && !sub) {
      // Replace: a stale resourceVersion in the body is a 409, as optimistic concurrency wants.
      const obj = JSON.parse(await readBody(req)) as KubeObject;
      if (this.replaceGate) {
        this.gated++;
        await this.replaceGate;
        this.gated--;
      }
      const now = this.store.get(key);
      if (!now) return this.send(req, res, 404, status(404, 'NotFound', `${resource.plural} "${name}" not found`));
      if (obj.metadata?.resourceVersion && obj.metadata.resourceVersion !== now.metadata.resourceVersion) {
        return this.send(req, res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on ${resource.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`));
      }
      const stored = this.apply({ ...obj, apiVersion: now.apiVersion ?? 'v1', kind: resource.kind, metadata: { ...obj.metadata, name, ...(namespace !== undefined ? { namespace } : {}) } });
      return this.send(req, res, 200, this.asVersion(stored, resource, version));
    }
    if (sub !== 'status' || !resource.status) return this.send(req, res, 405, status(405, 'MethodNotAllowed', `${method} ${url.pathname} is not supported here`));

    const body = await readBody(req);
    if (this.statusFailures > 0) {
      this.statusFailures--;
      return this.send(req, res, 503, status(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'));
    }
    let nextStatus: unknown;
    if (method === 'PUT') {
      const obj = JSON.parse(body) as KubeObject;
      if (obj.metadata?.resourceVersion && obj.metadata.resourceVersion !== current.metadata.resourceVersion) {
        return this.send(req, res, 409, status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again'));
      }
      nextStatus = obj['status'];
    } else if (method === 'PATCH') {
      const type = String(req.headers['content-type'] ?? '');
      const patch = JSON.parse(body);
      if (type.startsWith('application/json-patch+json')) {
        nextStatus = fastJsonPatch.applyPatch(clone(current), patch, false, false).newDocument['status'];
      } else if (type.startsWith('application/merge-patch+json')) {
        nextStatus = mergePatch(clone(current), patch)['status'];
      } else return this.send(req, res, 415, status(415, 'UnsupportedMediaType', `unsupported patch type ${type}`));
    } else return this.send(req, res, 405, status(405, 'MethodNotAllowed', `${method} on status is not supported here`));

    const next: KubeObject = { ...clone(current), status: nextStatus, metadata: { ...current.metadata, resourceVersion: String(++this.rv) } };
    this.store.set(key, next);
    this.emit('MODIFIED', resource, next);
    this.send(req, res, 200, this.asVersion(next, resource, version));
  }

  /** Gates every create (POST to a collection) until the promise resolves: lets a test line up racing creates. */
  createGate: Promise<void> | undefined;
  /** Gates every replace (PUT of an object, not status) likewise; each decides on the store as it is when let through. */
  replaceGate: Promise<void> | undefined;
  /** Requests waiting at `createGate` or `replaceGate`. */
  gated = 0;

  /** POST to a collection: 201 with the stored object, or 409 AlreadyExists (never an overwrite). */
  private async create(req: IncomingMessage, res: ServerResponse, resource: Resource, version: string, namespace: string | undefined): Promise<void> {
    const obj = JSON.parse(await readBody(req)) as KubeObject;
    if (this.createGate) {
      this.gated++;
      await this.createGate;
      this.gated--;
    }
    const name = obj.metadata?.name;
    if (!name) return this.send(req, res, 422, status(422, 'Invalid', 'metadata.name: Required value'));
    if (resource.namespaced && obj.metadata.namespace && obj.metadata.namespace !== namespace) {
      return this.send(req, res, 400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'));
    }
    if (this.store.has(this.keyOf(resource, namespace, name))) {
      return this.send(req, res, 409, status(409, 'AlreadyExists', `${resource.plural} "${name}" already exists`));
    }
    const stored = this.apply({ ...obj, apiVersion: resource.group ? `${resource.group}/${version}` : version, kind: resource.kind, metadata: { ...obj.metadata, ...(namespace !== undefined ? { namespace } : {}) } });
    this.send(req, res, 201, this.asVersion(stored, resource, version));
  }

  /** POST tokenreviews: authenticated when the token is ours and carries one of the audiences asked (the API server's own when none). */
  private async tokenReview(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return this.send(req, res, 405, status(405, 'MethodNotAllowed', `${req.method} on tokenreviews is not supported`));
    const review = JSON.parse(await readBody(req)) as { spec?: { token?: string; audiences?: string[] } };
    const asked = review.spec?.audiences?.length ? review.spec.audiences : [API_AUDIENCE];
    const t = this.saTokens.get(review.spec?.token ?? '');
    const audiences = t ? asked.filter((a) => t.audiences.includes(a)) : [];
    const result = t && audiences.length
      ? { authenticated: true, user: { username: `system:serviceaccount:${t.namespace}:${t.serviceAccount}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${t.namespace}`, 'system:authenticated'] }, audiences }
      : { authenticated: false, error: t ? 'token audiences are invalid for the target audiences' : 'invalid bearer token' };
    this.send(req, res, 201, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: { creationTimestamp: null }, spec: review.spec, status: result });
  }

  private watch(req: IncomingMessage, res: ServerResponse, resource: Resource, version: string, namespace: string | undefined, selector: Selector | undefined, fields: FieldSelector | undefined, url: URL): void {
    const from = url.searchParams.get('resourceVersion');
    const w: Watcher = { resource, version, res, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true', ...(namespace !== undefined ? { namespace } : {}), ...(selector ? { selector } : {}), ...(fields ? { fields } : {}) };
    this.requests.push({ method: 'GET', path: url.pathname, query: url.search, status: 200, user: userOf(req.headers.authorization) ?? '' });
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (from && from !== '0' && Number(from) < this.oldestRv) {
      // What a real API server does: 200, then one ERROR event with a 410 Status, then the end.
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.oldestRv})`) })}\n`);
      return;
    }
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
    if (!from || from === '0') {
      for (const o of this.objectsOf(resource)) {
        const ev: WatchEvent = { type: 'ADDED', rv: 0, resource, object: o };
        if (this.matches(w, ev)) this.writeEvent(w, { type: 'ADDED', object: this.asVersion(o, resource, version) });
      }
    } else {
      for (const ev of this.history) if (ev.rv > Number(from) && this.matches(w, ev)) this.writeEvent(w, { type: ev.type, object: this.asVersion(ev.object, resource, version) });
    }
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
    if (timeout > 0) {
      const t = setTimeout(() => res.end(), timeout * 1000);
      t.unref();
      res.on('close', () => clearTimeout(t));
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: Record<string, unknown>, patch: unknown): Record<string, unknown> {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch as Record<string, unknown>;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? target : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] as Record<string, unknown>, v);
  }
  return out;
}
