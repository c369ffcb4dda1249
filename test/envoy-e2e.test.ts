// Envoy in the loop, where Envoy exists: meshpilot -> real Envoy sidecars (ADS, SotW and delta) ->
// real HTTP backends, with the same rules and assertions as the proxyless gRPC e2e tests where
// both data planes carry the feature, plus what only Envoy does (mirroring, rate limits, outlier
// detection). Set ENVOY_BIN or put `envoy` on PATH to run it; without it the suite is skipped
// with a line saying so, and only the first describe runs: it builds every bootstrap this suite
// would start and checks it against Envoy's schema and against translate() output, so a wrong
// route config name or listener fails here too, not only on a machine with Envoy.
//
// How requests enter Envoy without iptables, and why there is no LDS: test/helpers/envoy-bootstrap.ts.
// Statistical bounds as in the gRPC e2e tests: 1000 requests at 80/20 -> 0.75-0.85 (+-4 sd).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadDirectory } from '../control-plane/config/load.ts';
import { checkResource } from '../control-plane/envoy/check.ts';
import { compile } from '../control-plane/model/compile.ts';
import { DOWNSTREAM_TLS, SDS_CLUSTER, UPSTREAM_TLS } from '../control-plane/translate/tls-context.ts';
import { CLUSTER, LISTENER, ROUTE_CONFIG } from '../control-plane/translate/type-urls.ts';
import { X509Certificate } from 'node:crypto';
import { getJson, startAdmin } from './helpers/admin-http.ts';
import { COOKIE_JASON_TO_V3, denyCallers, JASON_TO_V2, ONLY_V1_V2, REVIEWS, reviewsWeightedRoute, vsFor } from './helpers/bookinfo-rules.ts';
import { BOOTSTRAP_TYPE, XDS_CLUSTER, sidecarNodeId, virtualHostFor, type Workload } from './helpers/envoy-bootstrap.ts';
import { DELAY_HEADER, EntryClient, FAIL_FIRST_HEADER, outcome, startHttpBackend, type HttpBackend } from './helpers/envoy-http.ts';
import { hostHeader, HTTP_PORT, meshYaml, sidecarConfig, startEnvoyMesh, startSidecar, type EnvoyMesh, type MeshBackend, type Sidecar, type SidecarOptions } from './helpers/envoy-mesh.ts';
import { clusterHosts, findEnvoy } from './helpers/envoy-process.ts';
import { fetchSdsSecrets, spiffeId, startSdsAgent, tlsHandshake, type SdsAgent, type Secrets } from './helpers/envoy-identity.ts';
import { decoded, RawAdsClient, toStruct } from './helpers/raw-ads.ts';
import { hostOf, replaceFile } from './helpers/mesh-files.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';
import { abort, delay, header, httpRoute, to, toYaml } from './helpers/yaml-builders.ts';

type Json = Record<string, any>;

const envoy = findEnvoy();
if (!envoy) console.log('envoy-e2e: no envoy binary (ENVOY_BIN or PATH); the Envoy-in-the-loop suite is skipped, only its bootstrap checks run');
// The callee's sidecar listens on its own loopback IP, 127.0.0.2: Linux answers on all of
// 127.0.0.0/8, macOS only after `ifconfig lo0 alias 127.0.0.2`.
const secondLoopback = process.platform === 'linux';

const RATINGS = hostOf('ratings');
const DETAILS = hostOf('details');

// ---------------------------------------------------------------------------
// Workloads (node ids in meshpilot's form; the IPs of callers are in no ServiceEntry, so they
// have no inbound side).

const workload = (pod: string, ip: string, labels: Record<string, string>): Workload => ({ pod, namespace: 'default', ip, labels });
const PRODUCTPAGE = workload('productpage-v1-1', '10.255.0.1', { app: 'productpage', version: 'v1' });
const BATCH = workload('batch-1', '10.255.0.2', { app: 'batch' });
const RATINGS_POD = workload('ratings-v1-1', '127.0.0.2', { app: 'ratings', version: 'v1' });

// ---------------------------------------------------------------------------
// Backends and scenarios: which backends a mesh has, its rules, who calls and what they send to.

type BackendKey = 'reviews-v1' | 'reviews-v2' | 'reviews-v3' | 'ratings-v1' | 'ratings-broken' | 'details-v1';
const BACKENDS: Record<BackendKey, { service: string; version: string; failWith?: number }> = {
  'reviews-v1': { service: 'reviews', version: 'v1' },
  'reviews-v2': { service: 'reviews', version: 'v2' },
  'reviews-v3': { service: 'reviews', version: 'v3' },
  'ratings-v1': { service: 'ratings', version: 'v1' },
  // A second ratings v1 endpoint that answers every request with 503.
  'ratings-broken': { service: 'ratings', version: 'v1', failWith: 503 },
  'details-v1': { service: 'details', version: 'v1' },
};
const STANDARD: BackendKey[] = ['reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1', 'details-v1'];

interface Caller { workload: Workload; delta?: boolean }
interface Scenario {
  backends: BackendKey[];
  rules: string;
  trafficPolicies?: Record<string, Json>;
  callers: Caller[];
  /** ratings v1 behind its own sidecar (RATINGS_POD, 127.0.0.2): its endpoint is that sidecar's IP. */
  calleeRatings?: boolean;
  /** Services the callers send to (their Host headers must be in route config 9080). */
  sends: string[];
  /** HTTP filters the callers' (or the callee's) entry must carry for the feature under test. */
  callerFilters?: string[];
  calleeFilters?: string[];
}

const reviewsWeighted = (v1: number, v2: number, ...first: Json[]) => vsFor(REVIEWS, ...first, reviewsWeightedRoute(v1, v2));

const RATE_LIMIT = toYaml({
  apiVersion: 'traffic.meshpilot.io/v1alpha1',
  kind: 'RateLimit',
  metadata: { name: 'ratings', namespace: 'default' },
  // One minute: the bucket cannot refill while the test sends, so the count is exact.
  spec: { destination: { host: 'ratings', port: HTTP_PORT }, overrides: [{ source: { labels: { app: 'productpage' } }, limit: { requests: 5, per: '1m' } }] },
});

const SCENARIOS = {
  split: { backends: STANDARD, rules: reviewsWeighted(80, 20), callers: [{ workload: PRODUCTPAGE }], sends: ['reviews'] },
  headers: { backends: STANDARD, rules: reviewsWeighted(80, 20, JASON_TO_V2), callers: [{ workload: PRODUCTPAGE }], sends: ['reviews'] },
  cookie: { backends: STANDARD, rules: vsFor(REVIEWS, ...COOKIE_JASON_TO_V3), callers: [{ workload: PRODUCTPAGE }], sends: ['reviews'] },
  mirror: {
    backends: STANDARD,
    // The rule of e2e-fault's gRPC mirroring test (which gRPC leaves out).
    rules: vsFor(
      REVIEWS,
      httpRoute([to(REVIEWS, 'v1')], { match: [header('x-shadow', 'exact', 'several')], mirrors: [{ ...to(REVIEWS, 'v2'), percentage: { value: 50 } }, to(REVIEWS, 'v3')] }),
      httpRoute([to(REVIEWS, 'v1')], { mirror: { host: REVIEWS, subset: 'v3' }, mirrorPercentage: { value: 100 } }),
    ),
    callers: [{ workload: PRODUCTPAGE }],
    sends: ['reviews'],
  },
  fault: {
    backends: STANDARD,
    rules: [
      vsFor(DETAILS, httpRoute([to(DETAILS, 'v1')], { match: [header('x-test', 'exact', 'forbidden')], fault: abort(403, 100) }), httpRoute([to(DETAILS, 'v1')], { fault: abort(503, 50) })),
      vsFor(RATINGS, httpRoute([to(RATINGS, 'v1')], { match: [header('end-user', 'exact', 'jason')], fault: delay('2s', 100) }), httpRoute([to(RATINGS, 'v1')])),
    ].join('---\n'),
    callers: [{ workload: PRODUCTPAGE }],
    sends: ['details', 'ratings'],
    callerFilters: ['envoy.filters.http.fault'],
  },
  rateLimit: {
    backends: STANDARD,
    rules: RATE_LIMIT,
    callers: [{ workload: PRODUCTPAGE }, { workload: BATCH }],
    sends: ['ratings'],
    callerFilters: ['envoy.filters.http.local_ratelimit'],
  },
  retriesTimeouts: {
    backends: STANDARD,
    rules: vsFor(
      DETAILS,
      httpRoute([to(DETAILS, 'v1')], { match: [header('x-route', 'exact', 'untimed')] }),
      httpRoute([to(DETAILS, 'v1')], { match: [header('x-retry', 'exact', 'on')], retries: { attempts: 3, retryOn: '5xx' } }),
      httpRoute([to(DETAILS, 'v1')], { match: [header('x-retry', 'exact', 'off')], retries: { attempts: 0 } }),
      httpRoute([to(DETAILS, 'v1')], { timeout: '0.5s', retries: { attempts: 0 } }),
    ),
    callers: [{ workload: PRODUCTPAGE }],
    sends: ['details'],
  },
  outlier: {
    backends: [...STANDARD, 'ratings-broken'],
    rules: '',
    trafficPolicies: { ratings: { outlierDetection: { consecutive5xxErrors: 2, interval: '1s', baseEjectionTime: '5m', maxEjectionPercent: 100, minHealthPercent: 0 } } },
    callers: [{ workload: PRODUCTPAGE }],
    sends: ['ratings'],
  },
  delta: { backends: STANDARD, rules: reviewsWeighted(80, 20), callers: [{ workload: PRODUCTPAGE, delta: true }], sends: ['reviews'] },
  rbac: {
    backends: STANDARD,
    // e2e-authz's rules: only reviews v1 and v2 may call ratings (POST on Echo paths), and v2 is denied.
    rules: [ONLY_V1_V2, denyCallers('no-v2', ['reviews-v2'])].join('---\n'),
    callers: [{ workload: PRODUCTPAGE }],
    calleeRatings: true,
    sends: ['ratings'],
    calleeFilters: ['envoy.filters.http.rbac.deny', 'envoy.filters.http.rbac.allow'],
  },
} satisfies Record<string, Scenario>;
type ScenarioName = keyof typeof SCENARIOS;

// ---------------------------------------------------------------------------
// mTLS between two Envoys: meshpilot runs the mesh CA; each Envoy has its own agent (startAgent,
// in-process) serving SDS on a Unix socket its bootstrap's `sds-grpc` cluster names. ratings (the
// callee, behind its Envoy on 127.0.0.2, service account ratings) is STRICT; its DestinationRule
// says ISTIO_MUTUAL, so the callers' outbound cluster carries meshpilot's UpstreamTlsContext; an
// AuthorizationPolicy admits only productpage's SPIFFE ID. The callee's entry is virtualInbound's
// TLS chain for the port: its transport socket and its connection manager, both from translate().

const REVIEWS_CALLER = workload('reviews-v1-1', '10.255.0.3', { app: 'reviews', version: 'v1' });
/** The service account of each Envoy's agent (and of its CA bootstrap token). */
const MTLS_SA = { productpage: 'productpage', reviews: 'reviews', ratings: 'ratings' } as const;
const MTLS_CALLEE_CLUSTER = `outbound|${HTTP_PORT}||${RATINGS}`;

function mtlsFiles(ratingsPort: number): Record<string, string> {
  const peerAuth = toYaml({
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'ratings', namespace: 'default' },
    spec: { selector: { matchLabels: { app: 'ratings' } }, mtls: { mode: 'STRICT' } },
  });
  const onlyProductpage = toYaml({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'ratings-callers', namespace: 'default' },
    spec: { selector: { matchLabels: { app: 'ratings' } }, rules: [{ from: [{ source: { principals: [`cluster.local/ns/default/sa/${MTLS_SA.productpage}`] } }] }] },
  });
  return {
    'mesh.yaml': meshYaml([{ service: 'ratings', version: 'v1', port: ratingsPort, address: RATINGS_POD.ip, serviceAccount: MTLS_SA.ratings }], { ratings: { tls: { mode: 'ISTIO_MUTUAL' } } }),
    'mtls.yaml': `${peerAuth}---\n${onlyProductpage}`,
  };
}

/** The SDS config names of a CommonTlsContext as Envoy reads them: identity and trust secrets, and the cluster serving them. */
function sdsNames(common: Json): { identity: string[]; roots: string[]; clusters: string[] } {
  const cfgs = [...((common.tls_certificate_sds_secret_configs ?? []) as Json[]), common.combined_validation_context?.validation_context_sds_secret_config].filter(Boolean) as Json[];
  return {
    identity: ((common.tls_certificate_sds_secret_configs ?? []) as Json[]).map((c) => c.name),
    roots: [common.combined_validation_context?.validation_context_sds_secret_config?.name].filter(Boolean),
    clusters: [...new Set(cfgs.flatMap((c) => (c.sds_config?.api_config_source?.grpc_services ?? []).map((g: Json) => g.envoy_grpc?.cluster_name)))],
  };
}

/** The mesh's backends as the ServiceEntries list them, given each backend's port. */
function meshBackends(s: Scenario, portOf: (key: BackendKey) => number): MeshBackend[] {
  return s.backends.map((key) => ({
    ...BACKENDS[key],
    port: portOf(key),
    ...(s.calleeRatings && key === 'ratings-v1' ? { address: RATINGS_POD.ip } : {}),
  }));
}

function scenarioFiles(s: Scenario, portOf: (key: BackendKey) => number): Record<string, string> {
  return { 'mesh.yaml': meshYaml(meshBackends(s, portOf), s.trafficPolicies), ...(s.rules ? { 'rules.yaml': s.rules } : {}) };
}

// ---------------------------------------------------------------------------
// Runs everywhere: every bootstrap the Envoy suite starts, built from the same scenario with
// stand-in ports, passes Envoy's schema and refers only to what translate() generates.

describe('Envoy-in-the-loop bootstraps (checked without Envoy)', () => {
  const fakePort = (key: BackendKey) => 31000 + Object.keys(BACKENDS).indexOf(key);
  const hcmFilters = (e: { hcm: Json }) => (e.hcm.http_filters as Json[]).map((f) => f.name as string);

  it.each(Object.keys(SCENARIOS) as ScenarioName[])('%s', (name) => {
    const s: Scenario = SCENARIOS[name];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-envoy-e2e-check-'));
    try {
      for (const [file, text] of Object.entries(scenarioFiles(s, fakePort))) fs.writeFileSync(path.join(dir, file), text);
      const state = compile(loadDirectory(dir));
      expect(state.errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);

      const sidecars: Array<{ workload: Workload; first: boolean; opts: SidecarOptions }> = [
        ...s.callers.map((c, i) => ({ workload: c.workload, first: i === 0, opts: { delta: c.delta, outboundPort: 15901 } })),
        ...(s.calleeRatings ? [{ workload: RATINGS_POD, first: false, opts: { inboundPort: fakePort('ratings-v1') } }] : []),
      ];
      for (const { workload: w, first, opts } of sidecars) {
        const { resources, entries, bootstrap } = sidecarConfig(state.model, w, '127.0.0.1:15010', opts);
        expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...bootstrap }), `${w.pod}'s bootstrap`).toEqual([]);
        expect(bootstrap.node.id).toBe(sidecarNodeId(w));
        expect(bootstrap.dynamic_resources.ads_config.api_type).toBe(opts.delta ? 'DELTA_GRPC' : 'GRPC');
        // Nothing here has SDS: no cluster may need certificates.
        expect(resources[CLUSTER].filter((c) => c.transport_socket).map((c) => c.name)).toEqual([]);
        for (const e of entries) {
          if (e.name.startsWith('entry_outbound')) {
            expect(e.hcm.rds.route_config_name).toBe(String(HTTP_PORT));
            for (const svc of s.sends) expect(virtualHostFor(resources, String(HTTP_PORT), hostHeader(svc)), `a virtual host for ${hostHeader(svc)}`).toBeDefined();
            // The feature's filter, for the caller the test expects it on (the others may not need it).
            if (first) for (const f of s.callerFilters ?? []) expect(hcmFilters(e)).toContain(f);
          } else {
            expect(e.address).toBe(RATINGS_POD.ip);
            const clusters = (e.hcm.route_config.virtual_hosts as Json[]).flatMap((vh) => (vh.routes as Json[]).map((r) => r.route.cluster));
            for (const c of clusters) expect(resources[CLUSTER].map((x) => x.name), 'the inbound route cluster comes by CDS').toContain(c);
            for (const f of s.calleeFilters ?? []) expect(hcmFilters(e)).toContain(f);
          }
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('what the Envoy-in-the-loop sidecars would be sent (checked without Envoy)', () => {
  it("meshpilot's live ADS answers these node ids as Envoy sidecars, with the clusters and route config the entry listeners use", async () => {
    const t = new Teardown();
    try {
      const s: Scenario = SCENARIOS.rbac;
      const port = (key: BackendKey) => 32000 + Object.keys(BACKENDS).indexOf(key);
      const mesh = await startEnvoyMesh(t, scenarioFiles(s, port));
      expect(mesh.cp.state().errors.map((e) => e.message)).toEqual([]);
      const ask = async (w: Workload, type: string, names: string[]) => {
        const ads = new RawAdsClient(mesh.cp.xdsAddress, { 'grpc.use_local_subchannel_pool': 1 });
        t.add(() => ads.close());
        ads.send({ node: { id: sidecarNodeId(w), metadata: toStruct({ NAMESPACE: w.namespace, LABELS: w.labels }) as never, user_agent_name: 'envoy' }, type_url: type, resource_names: names });
        return decoded(await ads.next(10_000)) as Json[];
      };
      const callerClusters = (await ask(PRODUCTPAGE, CLUSTER, [])).map((c) => c.name);
      expect(callerClusters).toContain(`outbound|${HTTP_PORT}||${RATINGS}`);
      expect(callerClusters.filter((n: string) => n.startsWith('inbound|')), 'a caller in no ServiceEntry has no inbound side').toEqual([]);
      const [rc] = await ask(PRODUCTPAGE, ROUTE_CONFIG, [String(HTTP_PORT)]);
      expect(rc?.name).toBe(String(HTTP_PORT));
      expect((rc!.virtual_hosts as Json[]).some((vh) => vh.domains.includes(hostHeader('ratings')))).toBe(true);
      // The callee: its inbound cluster (which the inbound entry's routes name) comes by CDS.
      const calleeClusters = (await ask(RATINGS_POD, CLUSTER, [])).map((c) => c.name);
      expect(calleeClusters).toContain(`inbound|${port('ratings-v1')}||`);
    } finally {
      await t.run();
    }
  });
});

describe('mTLS between two Envoys: agents, SDS, bootstraps and TLS contexts (checked without Envoy)', () => {
  it('the agents get certificates from the mesh CA and serve them on the sockets the bootstraps name; the TLS chain and cluster meshpilot sends use exactly those secrets, and a handshake with them works only for the right identities', { timeout: 60_000 }, async () => {
    const t = new Teardown();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-envoy-mtls-check-'));
    t.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    try {
      const ratingsPort = 32500;
      const mesh = await startEnvoyMesh(t, mtlsFiles(ratingsPort), { ca: { dir: path.join(dir, 'ca'), serviceAccounts: Object.values(MTLS_SA) } });
      expect(mesh.cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
      expect(mesh.adsAddress, 'the Envoys use the plaintext ADS listener').toBe(mesh.cp.xdsPlaintextAddress);
      const bundle = fs.readFileSync(mesh.cp.ca!.trustBundlePath, 'utf8');

      // (1) Real agents, certificates from the mesh CA, SDS fetched over each socket as Envoy does.
      const agents: Record<keyof typeof MTLS_SA, SdsAgent> = {} as never;
      const secrets: Record<string, Secrets> = {};
      for (const [key, sa] of Object.entries(MTLS_SA) as Array<[keyof typeof MTLS_SA, string]>) {
        agents[key] = await startSdsAgent(t, mesh, dir, sa);
        expect(fs.statSync(agents[key].socket).isSocket()).toBe(true);
        const got = await fetchSdsSecrets(agents[key].socket, ['default', 'ROOTCA']);
        expect([...got.keys()].sort(), `${sa}'s SDS`).toEqual(['ROOTCA', 'default']);
        const leaf = new X509Certificate(got.get('default')!.tls_certificate.certificate_chain.inline_string);
        expect(leaf.subjectAltName, `${sa}'s certificate`).toBe(`URI:${spiffeId(sa)}`);
        expect(got.get('ROOTCA')!.validation_context.trusted_ca.inline_string.trim(), `${sa}'s ROOTCA is the mesh's trust bundle`).toBe(bundle.trim());
        secrets[key] = got;
      }
      const served = new Set(['default', 'ROOTCA']);

      // (2) The bootstraps: schema, ADS on the plaintext listener, sds-grpc on the agent's socket.
      const model = mesh.cp.state().model;
      const configs = {
        productpage: sidecarConfig(model, PRODUCTPAGE, mesh.adsAddress, { outboundPort: 15901, sdsSocket: agents.productpage.socket }),
        reviews: sidecarConfig(model, REVIEWS_CALLER, mesh.adsAddress, { outboundPort: 15902, sdsSocket: agents.reviews.socket }),
        ratings: sidecarConfig(model, RATINGS_POD, mesh.adsAddress, { inboundPort: ratingsPort, inboundTls: true, sdsSocket: agents.ratings.socket }),
      };
      for (const [key, c] of Object.entries(configs) as Array<[keyof typeof MTLS_SA, (typeof configs)['ratings']]>) {
        expect(checkResource({ '@type': BOOTSTRAP_TYPE, ...c.bootstrap }), `${key}'s bootstrap`).toEqual([]);
        const clusters = c.bootstrap.static_resources.clusters as Json[];
        const sds = clusters.find((x) => x.name === SDS_CLUSTER);
        expect(sds?.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address, `${key}'s ${SDS_CLUSTER}`).toEqual({ pipe: { path: agents[key].socket } });
        const xds = clusters.find((x) => x.name === XDS_CLUSTER)!.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
        expect(`${xds.address}:${xds.port_value}`).toBe(mesh.adsAddress);
      }

      // (3) The callers' outbound cluster to ratings: meshpilot's UpstreamTlsContext over SDS.
      const upstream = (key: 'productpage' | 'reviews') => {
        const cluster = configs[key].resources[CLUSTER].find((x) => x.name === MTLS_CALLEE_CLUSTER);
        expect(cluster, `${key} is sent ${MTLS_CALLEE_CLUSTER}`).toBeDefined();
        const tc = (cluster?.transport_socket as Json | undefined)?.typed_config as Json | undefined;
        expect(tc?.['@type'], `${MTLS_CALLEE_CLUSTER}'s transport socket`).toBe(UPSTREAM_TLS);
        return tc!;
      };
      const up = upstream('productpage');
      expect(upstream('reviews')).toEqual(up);
      const upNames = sdsNames(up.common_tls_context);
      expect(upNames).toEqual({ identity: ['default'], roots: ['ROOTCA'], clusters: [SDS_CLUSTER] });
      for (const n of [...upNames.identity, ...upNames.roots]) expect(served, `secret ${n} is one the agent serves`).toContain(n);
      const sanMatchers = up.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names as Json[];
      expect(sanMatchers).toEqual([{ san_type: 'URI', matcher: { exact: spiffeId(MTLS_SA.ratings) } }]);
      // Only ratings (the cluster and its subsets) is mTLS: no other cluster needs certificates.
      expect(configs.productpage.resources[CLUSTER].filter((x) => x.transport_socket && !String(x.name).endsWith(`|${RATINGS}`)).map((x) => x.name)).toEqual([]);

      // (4) The callee's entry: STRICT's TLS chain (client certificate required) and its HCM with the policy.
      const [entry] = configs.ratings.entries;
      expect(entry!.address).toBe(RATINGS_POD.ip);
      const down = entry!.transportSocket!.typed_config as Json;
      expect(down['@type']).toBe(DOWNSTREAM_TLS);
      expect(down.require_client_certificate).toBe(true);
      expect(sdsNames(down.common_tls_context)).toEqual({ identity: ['default'], roots: ['ROOTCA'], clusters: [SDS_CLUSTER] });
      const vi = configs.ratings.resources[LISTENER].find((l) => l.name === 'virtualInbound')!;
      const portChains = (vi.filter_chains as Json[]).filter((c) => c.filter_chain_match?.destination_port === ratingsPort);
      expect(portChains.map((c) => Boolean(c.transport_socket)), 'STRICT: one chain for the port, with TLS').toEqual([true]);
      const meshHcm = (portChains[0]!.filters as Json[])[0]!.typed_config as Json;
      // meshpilot's inbound HCM tells the app the verified caller (and drops a forged header).
      expect(meshHcm).toMatchObject({ forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { uri: true } });
      expect(entry!.hcm).toEqual(meshHcm);
      const allow = (entry!.hcm.http_filters as Json[]).find((f) => f.name === 'envoy.filters.http.rbac.allow');
      expect(JSON.stringify(allow?.typed_config ?? {})).toContain(`"exact":"${spiffeId(MTLS_SA.productpage)}"`);
      expect(JSON.stringify(allow?.typed_config ?? {})).not.toContain(spiffeId(MTLS_SA.reviews));

      // (5) node:tls with the SDS secrets as the two contexts say: productpage -> ratings works and
      // ratings sees productpage's SPIFFE ID; reviews' handshake works too (the policy, not TLS,
      // refuses it); a server holding another identity fails the SAN match; no client certificate fails.
      const material = (key: keyof typeof MTLS_SA) => ({ identity: secrets[key]!.get('default')!, roots: secrets[key]!.get('ROOTCA')! });
      const opts = { serverSans: sanMatchers.map((m) => m.matcher.exact as string), serverAlpn: down.common_tls_context.alpn_protocols, clientAlpn: up.common_tls_context.alpn_protocols, sni: up.sni };
      const ok = await tlsHandshake(material('ratings'), material('productpage'), opts);
      expect(ok, JSON.stringify(ok)).toMatchObject({ ok: true, serverSawPeer: [spiffeId(MTLS_SA.productpage)], alpn: 'http/1.1' });
      expect(await tlsHandshake(material('ratings'), material('reviews'), opts)).toMatchObject({ ok: true, serverSawPeer: [spiffeId(MTLS_SA.reviews)] });
      const wrongServer = await tlsHandshake(material('reviews'), material('productpage'), opts);
      expect(wrongServer.ok).toBe(false);
      expect(wrongServer.error).toMatch(/URI SANs/);
      expect((await tlsHandshake(material('ratings'), { roots: material('productpage').roots }, opts)).ok, 'no client certificate').toBe(false);
    } finally {
      await t.run();
    }
  });
});

// ---------------------------------------------------------------------------
// The suite with real Envoy.

const backends = new Map<BackendKey, HttpBackend>();
const teardown = new Teardown();

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function expectShare(counts: Record<string, number>, version: string, lo: number, hi: number): void {
  const what = `${version} share of ${JSON.stringify(counts)}`;
  expect(Object.keys(counts).filter((k) => k.startsWith('status:')), what).toEqual([]);
  expect((counts[version] ?? 0) / total(counts), what).toBeGreaterThanOrEqual(lo);
  expect((counts[version] ?? 0) / total(counts), what).toBeLessThanOrEqual(hi);
}

/** The scenario's mesh and its sidecars, callers first (in the scenario's order). */
async function startScenario(name: ScenarioName): Promise<{ mesh: EnvoyMesh; callers: Array<Sidecar & { client: NonNullable<Sidecar['client']> }>; callee?: Sidecar }> {
  const s: Scenario = SCENARIOS[name];
  const mesh = await startEnvoyMesh(teardown, scenarioFiles(s, (key) => backends.get(key)!.port));
  expect(mesh.cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
  const callee = s.calleeRatings ? await startSidecar(teardown, envoy!, mesh, RATINGS_POD, { inboundPort: backends.get('ratings-v1')!.port }) : undefined;
  const callers = [];
  for (const c of s.callers) {
    const sc = await startSidecar(teardown, envoy!, mesh, c.workload, { caller: true, delta: c.delta, readyHost: hostHeader(s.sends[0]!) });
    callers.push({ ...sc, client: sc.client! });
  }
  return { mesh, callers, ...(callee ? { callee } : {}) };
}

/** Until a request to `service` through `sidecar` is answered 200 by a backend. */
async function ready(sidecar: Sidecar, service: string, headers: Record<string, string> = {}): Promise<void> {
  await waitFor(async () => (await sidecar.client!.request(hostHeader(service), headers)).status === 200, {
    timeoutMs: 20_000,
    intervalMs: 100,
    description: `a request to ${service} through ${sidecar.workload.pod}'s Envoy`,
  });
}

describe.skipIf(!envoy)('meshpilot with real Envoy sidecars', () => {
  beforeAll(async () => {
    for (const [key, spec] of Object.entries(BACKENDS) as Array<[BackendKey, (typeof BACKENDS)[BackendKey]]>) backends.set(key, await startHttpBackend(spec));
  });
  afterAll(async () => {
    await Promise.all([...backends.values()].map((b) => b.stop()));
  });
  // Envoy's output is quoted when it fails to start; otherwise read it with sidecar.envoy.output().
  afterEach(() => teardown.run());

  it('splits 80/20 between reviews v1 and v2 by weight, and shifts to 50/50 when the rule file is rewritten', async () => {
    const { mesh, callers: [pp] } = await startScenario('split');
    await ready(pp!, 'reviews');
    const counts = await pp!.client.split(hostHeader('reviews'), 1000);
    expectShare(counts, 'v1', 0.75, 0.85);
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0), JSON.stringify(counts)).toBe(1000);

    await replaceFile(mesh.dir, 'rules.yaml', reviewsWeighted(50, 50));
    // 200 requests at 80/20 give a v1 share under 0.68 with odds below 1e-4.
    await waitFor(async () => (await pp!.client.split(hostHeader('reviews'), 200)).v1! / 200 < 0.68, { timeoutMs: 15_000, intervalMs: 0, description: 'the 50/50 split to reach Envoy' });
    expectShare(await pp!.client.split(hostHeader('reviews'), 1000), 'v1', 0.43, 0.57);
  });

  it('sends end-user: jason to reviews v2 and everyone else by weight', async () => {
    const { callers: [pp] } = await startScenario('headers');
    await ready(pp!, 'reviews');
    const c = pp!.client;
    expect(await c.split(hostHeader('reviews'), 200, { 'end-user': 'jason' })).toEqual({ v2: 200 });
    // Another value of the header is not a match.
    expectShare(await c.split(hostHeader('reviews'), 1000, { 'end-user': 'jasonx' }), 'v1', 0.75, 0.85);
    expectShare(await c.split(hostHeader('reviews'), 1000), 'v1', 0.75, 0.85);
  });

  it('routes by a cookie regex match', async () => {
    const { callers: [pp] } = await startScenario('cookie');
    await ready(pp!, 'reviews');
    const c = pp!.client;
    const reviews = hostHeader('reviews');
    expect(await c.split(reviews, 50, { cookie: 'user=jason' })).toEqual({ v3: 50 });
    expect(await c.split(reviews, 50, { cookie: 'theme=dark;user=jason;lang=en' })).toEqual({ v3: 50 });
    // Not matches: another user, a longer name, no cookie at all.
    expect(await c.split(reviews, 50, { cookie: 'user=bob' })).toEqual({ v1: 50 });
    expect(await c.split(reviews, 50, { cookie: 'user=jasonx' })).toEqual({ v1: 50 });
    expect(await c.split(reviews, 50)).toEqual({ v1: 50 });
  });

  it('mirrors: every request to v3 and half to v2 while v1 answers; the copies carry a -shadow host', async () => {
    const { callers: [pp] } = await startScenario('mirror');
    await ready(pp!, 'reviews');
    const v2 = backends.get('reviews-v2')!;
    const v3 = backends.get('reviews-v3')!;
    const shadowed = (b: HttpBackend, from: number) => b.received.slice(from).filter((r) => r.host.includes('-shadow')).length;
    const [v2From, v3From] = [v2.received.length, v3.received.length];

    expect(await pp!.client.split(hostHeader('reviews'), 400, { 'x-shadow': 'several' })).toEqual({ v1: 400 });
    expect(await pp!.client.split(hostHeader('reviews'), 100)).toEqual({ v1: 100 });
    // Mirrors are sent beside the request and not waited for: wait until v3 has all 500 copies.
    await waitFor(() => shadowed(v3, v3From) >= 500, { timeoutMs: 10_000, description: 'reviews v3 to receive 500 mirrored copies' });
    expect(v3.received.length - v3From, 'everything v3 got is a copy').toBe(shadowed(v3, v3From));
    const v2Share = shadowed(v2, v2From) / 400;
    expect(v2Share, `${shadowed(v2, v2From)} copies of 400 at 50%`).toBeGreaterThanOrEqual(0.4);
    expect(v2Share, `${shadowed(v2, v2From)} copies of 400 at 50%`).toBeLessThanOrEqual(0.6);
  });

  it('aborts about half of the requests with 503, 403 for x-test: forbidden, and delays end-user: jason by 2 s', async () => {
    const { callers: [pp] } = await startScenario('fault');
    await ready(pp!, 'ratings');
    const c = pp!.client;
    const counts = await c.split(hostHeader('details'), 1000);
    expect(Object.keys(counts).sort(), JSON.stringify(counts)).toEqual(['status:503', 'v1']);
    const aborted = counts['status:503']! / 1000;
    expect(aborted, JSON.stringify(counts)).toBeGreaterThanOrEqual(0.43);
    expect(aborted, JSON.stringify(counts)).toBeLessThanOrEqual(0.57);
    // The 503s are the injected fault (Envoy's body), not a backend's.
    let body = '';
    for (let i = 0; i < 100 && !body; i++) {
      const r = await c.request(hostHeader('details'));
      if (r.status === 503) body = r.body;
    }
    expect(body).toMatch(/fault filter abort/);
    expect(await c.split(hostHeader('details'), 100, { 'x-test': 'forbidden' })).toEqual({ 'status:403': 100 });

    const jason = c.request(hostHeader('ratings'), { 'end-user': 'jason' });
    const others = [];
    for (const h of [{}, { 'end-user': 'bob' }, { 'end-user': 'jasonx' }] as Array<Record<string, string>>) for (let i = 0; i < 20; i++) others.push(await c.request(hostHeader('ratings'), h));
    expect(others.filter((r) => outcome(r) !== 'v1').map(outcome)).toEqual([]);
    expect(Math.max(...others.map((r) => r.ms)), 'slowest request without end-user: jason (ms)').toBeLessThan(1000);
    const j = await jason;
    expect(outcome(j)).toBe('v1');
    expect(j.ms, "jason's request (ms)").toBeGreaterThanOrEqual(1900);
  });

  it('rate limits productpage to 5 requests a minute to ratings (429 beyond), and leaves another caller alone', async () => {
    const { callers: [pp, batch] } = await startScenario('rateLimit');
    // No readiness request to ratings: it would spend a token. Envoy is LIVE with the routes.
    const limited = await pp!.client.split(hostHeader('ratings'), 20, {}, 1);
    expect(limited).toEqual({ v1: 5, 'status:429': 15 });
    expect(await batch!.client.split(hostHeader('ratings'), 20, {}, 1)).toEqual({ v1: 20 });
  });

  it('retries 5xx when the route says so, not otherwise, and ends a slow request at the route timeout with 504', async () => {
    const { callers: [pp] } = await startScenario('retriesTimeouts');
    await ready(pp!, 'details', { 'x-route': 'untimed' });
    const c = pp!.client;
    const details = backends.get('details-v1')!;
    const attemptsFor = (key: string) => details.received.filter((r) => r.headers[FAIL_FIRST_HEADER] === key).length;

    // The backend fails the first attempt of each key: with retries every request succeeds on the second.
    for (let i = 0; i < 30; i++) {
      const key = `retry-on-${i}-${Date.now()}`;
      const r = await c.request(hostHeader('details'), { 'x-retry': 'on', [FAIL_FIRST_HEADER]: key });
      expect(outcome(r), key).toBe('v1');
      expect(attemptsFor(key), key).toBe(2);
    }
    for (let i = 0; i < 30; i++) {
      const key = `retry-off-${i}-${Date.now()}`;
      const r = await c.request(hostHeader('details'), { 'x-retry': 'off', [FAIL_FIRST_HEADER]: key });
      expect(outcome(r), key).toBe('status:503');
      expect(attemptsFor(key), key).toBe(1);
    }

    const slow = await c.request(hostHeader('details'), { [DELAY_HEADER]: '2000' });
    expect(slow.status, slow.body).toBe(504);
    expect(slow.ms).toBeGreaterThanOrEqual(400);
    expect(slow.ms).toBeLessThan(1800);
    expect(outcome(await c.request(hostHeader('details')))).toBe('v1');
    // Control: the route without a timeout lets a 1 s request finish.
    expect(outcome(await c.request(hostHeader('details'), { 'x-route': 'untimed', [DELAY_HEADER]: '1000' }))).toBe('v1');
  });

  it('ejects the ratings endpoint that answers 503 after 2 in a row; then every request goes to the healthy one', async () => {
    const { callers: [pp] } = await startScenario('outlier');
    const c = pp!.client;
    const good = backends.get('ratings-v1')!;
    const broken = backends.get('ratings-broken')!;
    const seen: Record<string, number> = {};
    await waitFor(
      async () => {
        const batch = await c.split(hostHeader('ratings'), 10, {}, 1);
        for (const [k, n] of Object.entries(batch)) seen[k] = (seen[k] ?? 0) + n;
        return batch.v1 === 10;
      },
      { timeoutMs: 15_000, intervalMs: 0, description: '10 requests in a row to reach the healthy endpoint' },
    );
    // Round robin over both: the broken one was picked, and it failed, before it was ejected.
    expect(seen['status:503'] ?? 0, JSON.stringify(seen)).toBeGreaterThanOrEqual(1);
    const receivedBefore = broken.received.length;
    const results = [];
    for (let i = 0; i < 100; i++) results.push(await c.request(hostHeader('ratings')));
    expect(results.map((r) => r.reply?.instance ?? `status:${r.status}`).filter((x) => x !== good.instance)).toEqual([]);
    expect(broken.received.length, 'requests that reached the ejected endpoint').toBe(receivedBefore);
    const hosts = await clusterHosts(pp!.envoy, `outbound|${HTTP_PORT}||${RATINGS}`);
    expect(hosts.get(`127.0.0.1:${broken.port}`)).toMatch(/failed_outlier_check/);
    expect(hosts.get(`127.0.0.1:${good.port}`)).toBe('healthy');
  });

  it('delta xDS: the same 80/20 split, and /debug/proxies shows the proxy on the delta protocol, SYNCED', async () => {
    const { mesh, callers: [pp] } = await startScenario('delta');
    await ready(pp!, 'reviews');
    expectShare(await pp!.client.split(hostHeader('reviews'), 1000), 'v1', 0.75, 0.85);
    const admin = await startAdmin(teardown, mesh.cp);
    const id = sidecarNodeId(PRODUCTPAGE);
    await waitFor(async () => {
      const p = (await getJson(`${admin}/debug/proxies?proxy=${encodeURIComponent(id)}`)).body.proxies?.[0];
      return p?.protocol === 'delta' && p?.state === 'SYNCED';
    }, { timeoutMs: 10_000, description: `${id} to be listed as delta and SYNCED` });
  });

  it.skipIf(!secondLoopback)("AuthorizationPolicy on the callee's sidecar: v1 admitted, v2 denied (DENY wins), v3 not allowed", async () => {
    const { callers: [pp], callee } = await startScenario('rbac');
    const ratings = hostHeader('ratings');
    const echo = { path: '/meshpilot.demo.v1.Echo/Call', method: 'POST' };
    const as = (caller: string) => ({ 'x-caller': caller });
    await waitFor(async () => (await pp!.client.request(ratings, as('reviews-v1'), echo)).status === 200, { timeoutMs: 20_000, intervalMs: 100, description: 'reviews-v1 to get through to ratings' });
    const outcomes = async (caller: string, opts = echo) => {
      const out: Record<string, number> = {};
      for (let i = 0; i < 20; i++) {
        const k = outcome(await pp!.client.request(ratings, as(caller), opts));
        out[k] = (out[k] ?? 0) + 1;
      }
      return out;
    };
    expect(await outcomes('reviews-v1')).toEqual({ v1: 20 });
    expect(await outcomes('reviews-v2')).toEqual({ 'status:403': 20 });
    expect(await outcomes('reviews-v3')).toEqual({ 'status:403': 20 });
    // The allowed caller, on a path the policy does not list.
    expect(await outcomes('reviews-v1', { path: '/', method: 'GET' })).toEqual({ 'status:403': 20 });
    // The denials came from the callee's sidecar: its inbound connection manager counted them.
    const stats = (await callee!.envoy.adminGet('/stats?filter=rbac')).text;
    expect(stats, stats).toMatch(/rbac\.\S*denied: [1-9]/);
  });

  it.skipIf(!secondLoopback)("mTLS between two Envoys: productpage's Envoy reaches ratings' STRICT chain with its SPIFFE ID, reviews' is denied 403, plaintext fails", async () => {
    const ratings = backends.get('ratings-v1')!;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-envoy-mtls-'));
    teardown.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    const mesh = await startEnvoyMesh(teardown, mtlsFiles(ratings.port), { ca: { dir: path.join(dir, 'ca'), serviceAccounts: Object.values(MTLS_SA) } });
    expect(mesh.cp.state().errors.map((e) => e.message), 'the rules must be accepted').toEqual([]);
    const [ppAgent, reviewsAgent, ratingsAgent] = await Promise.all([MTLS_SA.productpage, MTLS_SA.reviews, MTLS_SA.ratings].map((sa) => startSdsAgent(teardown, mesh, dir, sa)));
    const callee = await startSidecar(teardown, envoy!, mesh, RATINGS_POD, { inboundPort: ratings.port, inboundTls: true, sdsSocket: ratingsAgent!.socket });
    const pp = await startSidecar(teardown, envoy!, mesh, PRODUCTPAGE, { caller: true, sdsSocket: ppAgent!.socket, readyHost: hostHeader('ratings') });
    const rv = await startSidecar(teardown, envoy!, mesh, REVIEWS_CALLER, { caller: true, sdsSocket: reviewsAgent!.socket, readyHost: hostHeader('ratings') });
    const host = hostHeader('ratings');

    // Envoy warms the cluster and the listener until SDS has answered: retry until through.
    await waitFor(async () => (await pp.client!.request(host)).status === 200, { timeoutMs: 20_000, intervalMs: 100, description: "productpage's Envoy through to ratings over mTLS" });
    expect(await pp.client!.split(host, 20)).toEqual({ v1: 20 });
    const r = await pp.client!.request(host);
    expect(outcome(r)).toBe('v1');
    const xfcc = r.reply!.headers['x-forwarded-client-cert'] ?? '';
    expect(xfcc, 'the peer identity the callee verified').toContain(`URI=${spiffeId(MTLS_SA.productpage)}`);
    expect(xfcc, "the callee's own identity").toContain(`By=${spiffeId(MTLS_SA.ratings)}`);

    // Another identity: the handshake succeeds, the AuthorizationPolicy refuses it in the callee's Envoy.
    await waitFor(async () => (await rv.client!.request(host)).status === 403, { timeoutMs: 20_000, intervalMs: 100, description: "reviews' Envoy refused 403 by ratings' policy" });
    expect(await rv.client!.split(host, 20)).toEqual({ 'status:403': 20 });
    const calleeStats = (await callee.envoy.adminGet('/stats')).text;
    expect(calleeStats, 'RBAC denials in the callee').toMatch(/rbac\.\S*denied: [1-9]/);
    expect(calleeStats, 'TLS handshakes on the callee listener').toMatch(/listener\.127\.0\.0\.2_\d+\.ssl\.handshake: [1-9]/);
    const callerStats = (await pp.envoy.adminGet('/stats?filter=ssl.handshake')).text;
    expect(callerStats, 'TLS handshakes on the caller cluster').toMatch(/ssl\.handshake: [1-9]/);

    // Plaintext HTTP straight to the callee's TLS listener: no answer (the handshake fails).
    const plain = new EntryClient(RATINGS_POD.ip, ratings.port);
    teardown.add(() => plain.close());
    const direct = await plain.request(host, {}, { timeoutMs: 5000 }).then((x) => `status:${x.status}`, (e: Error) => `error:${e.message}`);
    expect(direct).toMatch(/^error:/);
  });
});

