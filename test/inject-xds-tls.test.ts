// The injected Envoy's xDS channel, end to end with everything but Envoy real: meshpilot serving
// xDS over TLS with its mesh CA (serve --xds-tls), the agent getting the pod's certificate and
// serving it over SDS, and a client that does what the injected bootstrap tells Envoy to do: dial
// the port it names, send its SNI, present the SDS secret it names, trust the SDS root it names,
// accept the server only if a SAN matcher of its list matches (as Envoy's
// match_typed_subject_alt_names does, after chain verification), offer its ALPN, and send its node.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { startAgent, type RunningAgent } from '../control-plane/agent/agent.ts';
import { SECRET_TYPE_URL } from '../control-plane/agent/sds-secrets.ts';
import type { SdsRequest, SdsResponse } from '../control-plane/agent/sds-server.ts';
import { decodeResource } from '../control-plane/envoy/check.ts';
import { PROTO_INCLUDE_DIRS } from '../control-plane/envoy/protos.ts';
import { INJECT } from '../control-plane/inject/annotations.ts';
import { SDS_CLUSTER, XDS_CLUSTER } from '../control-plane/inject/bootstrap.ts';
import { loadInjectionConfig } from '../control-plane/inject/config.ts';
import { injectPod, type PodLike } from '../control-plane/inject/inject-pod.ts';
import { AGENT_CONTAINER, PROXY_CONTAINER } from '../control-plane/inject/names.ts';
import { startControlPlane, type ControlPlane } from '../control-plane/server.ts';
import { createCA } from '../control-plane/tls/certs.ts';
import { expandedArgs, type PodFacts } from './helpers/kubelet.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { RawAdsClient, toStruct } from './helpers/raw-ads.ts';
import { waitFor } from './helpers/wait.ts';

const config = loadInjectionConfig();
const POD: PodFacts = { ip: '10.0.0.7', name: 'reviews-v1-5d8f-abcde', namespace: 'shop', serviceAccount: 'reviews' };
const SPIFFE_ID = 'spiffe://cluster.local/ns/shop/sa/reviews';
const TOKEN = 'projected-token-reviews-0123456789';
const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

type SanMatcher = { san_type: string; matcher: { exact: string } };
interface XdsTls {
  host: string;
  port: number;
  sni: string;
  sans: SanMatcher[];
  alpn: string[];
  identitySecret: string;
  rootSecret: string;
}

let dir: string;
let cp: ControlPlane;
let boot: Record<string, any>;
let agentArgs: string[];
let xds: XdsTls;

/** What the bootstrap says about reaching meshpilot: address, port and the TLS context's choices. */
function xdsTlsOf(bootstrap: Record<string, any>): XdsTls {
  const cluster = bootstrap.static_resources.clusters.find((c: { name: string }) => c.name === XDS_CLUSTER);
  const socket = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  const ctx = cluster.transport_socket.typed_config;
  const common = ctx.common_tls_context;
  // Both secrets come from the agent's SDS cluster.
  const sdsCluster = (s: { sds_config: any }) => s.sds_config.api_config_source.grpc_services[0].envoy_grpc.cluster_name;
  const identity = common.tls_certificate_sds_secret_configs[0];
  const root = common.combined_validation_context.validation_context_sds_secret_config;
  expect([sdsCluster(identity), sdsCluster(root)]).toEqual([SDS_CLUSTER, SDS_CLUSTER]);
  return {
    host: socket.address,
    port: socket.port_value,
    sni: ctx.sni,
    sans: common.combined_validation_context.default_validation_context.match_typed_subject_alt_names,
    alpn: common.alpn_protocols,
    identitySecret: identity.name,
    rootSecret: root.name,
  };
}

/** Envoy's SAN check: after the chain verified, some matcher must equal a SAN of its type. */
function sanCheck(matchers: SanMatcher[]) {
  const label: Record<string, string> = { DNS: 'DNS', URI: 'URI', IP_ADDRESS: 'IP Address' };
  return (_host: string, cert: tls.PeerCertificate): Error | undefined => {
    const sans = (cert.subjectaltname ?? '').split(', ').map((s) => [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1)]);
    const ok = matchers.some((m) => sans.some(([type, value]) => type === label[m.san_type] && value === m.matcher.exact));
    return ok ? undefined : new Error(`no SAN of ${cert.subjectaltname} matches ${JSON.stringify(matchers)}`);
  };
}

/** meshpilot's TLS xDS listener: in the pod the bootstrap's host resolves to it; here it is on loopback. */
function tlsConnect(opts: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const [host, port] = [cp.xdsAddress.slice(0, cp.xdsAddress.lastIndexOf(':')), Number(cp.xdsAddress.slice(cp.xdsAddress.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, ...opts }, () => resolve(s));
    s.once('error', reject);
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshpilot-inject-xds-tls-'));
  fs.mkdirSync(path.join(dir, 'rules'));
  fs.writeFileSync(path.join(dir, 'tokens'), `${TOKEN} shop reviews\n`, { mode: 0o600 });
  cp = await startControlPlane({ configDir: path.join(dir, 'rules'), xdsListen: '127.0.0.1:0', adminListen: null, logger: captureLogs().logger, xdsTls: { dir: path.join(dir, 'ca'), tokensFile: path.join(dir, 'tokens') } });
  const pod: PodLike = { apiVersion: 'v1', kind: 'Pod', metadata: { name: POD.name, labels: { app: 'reviews', version: 'v1' } }, spec: { serviceAccountName: POD.serviceAccount, containers: [{ name: 'app', image: 'example.com/app:1' }] } };
  const r = injectPod(pod, { namespace: POD.namespace, namespaceLabels: { [INJECT]: 'enabled' }, path: [] }, config);
  const inits = r.pod.spec!.initContainers!;
  const envoyArgs = expandedArgs(inits.find((c) => c.name === PROXY_CONTAINER)!, POD);
  boot = YAML.parse(envoyArgs[envoyArgs.indexOf('--config-yaml') + 1]!);
  agentArgs = inits.find((c) => c.name === AGENT_CONTAINER)!.args!;
  xds = xdsTlsOf(boot);
});

afterAll(async () => {
  await cp?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the injected Envoy bootstrap against meshpilot\'s TLS xDS', () => {
  it('dials the TLS port (where the agent gets its certificates) and asks for a name meshpilot\'s serving certificate has', async () => {
    // The same listener as the CA the agent dials, which meshpilot serves only with TLS.
    expect(xds.port).toBe(config.xds.caPort);
    expect(xds.port).not.toBe(config.xds.port);
    expect(agentArgs[agentArgs.indexOf('--ca-address') + 1]).toBe(`${xds.host}:${xds.port}`);
    // In the install, that Service port leads to the --xds-tls listener (test/kube-install.test.ts
    // checks every rendered overlay; the base is read here, without kubectl).
    const docs = YAML.parseAllDocuments(fs.readFileSync('examples/kubernetes/install/base/control-plane.yaml', 'utf8')).map((d) => d.toJS());
    const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'meshpilot');
    const container = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'meshpilot').spec.template.spec.containers[0];
    expect(`${svc.metadata.name}.${svc.metadata.namespace}.svc.${config.xds.clusterDomain}`).toBe(xds.host);
    const target = svc.spec.ports.find((p: { port: number }) => p.port === xds.port).targetPort;
    const containerPort = container.ports.find((p: { name: string }) => p.name === target).containerPort;
    expect(container.args).toEqual(expect.arrayContaining(['--xds-tls', `--xds-listen=0.0.0.0:${containerPort}`]));

    // SNI and the SAN matcher name the host dialled, and meshpilot's real serving certificate
    // (what a server started with --xds-tls presents) carries it as a DNS SAN.
    expect(xds.sni).toBe(xds.host);
    expect(xds.sans).toEqual([{ san_type: 'DNS', matcher: { exact: xds.host } }]);
    const s = await tlsConnect({ servername: xds.sni, rejectUnauthorized: false, ALPNProtocols: xds.alpn });
    const served = s.getPeerCertificate();
    s.destroy();
    expect(served.subjectaltname?.split(', ')).toContain(`DNS:${xds.host}`);
    expect(sanCheck(xds.sans)(xds.sni, served)).toBeUndefined();
  });

  it('with the agent\'s SDS secrets: mutual TLS succeeds, and meshpilot serves the pod\'s node as its certificate\'s identity', async () => {
    // The agent as injected: its startup probe fails until it has a certificate.
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, ''); // no token yet: the CA refuses
    const sdsPipe = boot.static_resources.clusters.find((c: { name: string }) => c.name === SDS_CLUSTER).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path;
    const socket = path.join(dir, sdsPipe);
    const agent: RunningAgent = await startAgent({
      identity: { trustDomain: 'cluster.local', namespace: POD.namespace, serviceAccount: POD.serviceAccount },
      // In the pod it dials the bootstrap's host and checks that name; here the same name on loopback.
      ca: { address: cp.xdsAddress, serverName: xds.host, caRootPem: fs.readFileSync(cp.ca!.trustBundlePath, 'utf8'), tokenFile },
      outDir: path.join(dir, 'certs'),
      validitySeconds: 3600,
      sdsSocket: socket,
      readyListen: { host: '127.0.0.1', port: 0 },
      logger: captureLogs().logger,
      backoff: { initialMs: 50, maxMs: 200 },
    });
    const sds = sdsClient(socket);
    const streams: Array<grpc.ClientDuplexStream<SdsRequest, SdsResponse>> = [];
    let ads: RawAdsClient | undefined;
    let other: RawAdsClient | undefined;
    try {
      const ready = `http://${agent.ready!.address}/healthz/ready`;
      expect((await fetch(ready)).status).toBe(503);
      fs.writeFileSync(tokenFile, TOKEN);
      await waitFor(async () => (await fetch(ready)).status === 200, { timeoutMs: 10_000, description: 'agent ready once it has a certificate' });

      // Envoy's side: the two secrets the bootstrap names, from the agent's socket.
      const secret = async (name: string) => {
        const call = sds.StreamSecrets();
        streams.push(call);
        call.on('error', () => undefined);
        const first = new Promise<SdsResponse>((resolve) => call.once('data', resolve));
        call.write({ node: { id: boot.node.id }, type_url: SECRET_TYPE_URL, resource_names: [name] });
        const [s] = (await first).resources.map((a) => decodeResource(a) as any);
        expect(s.name).toBe(name);
        return s;
      };
      const identity = (await secret(xds.identitySecret)).tls_certificate;
      const rootPem: string = (await secret(xds.rootSecret)).validation_context.trusted_ca.inline_string;
      const certChainPem: string = identity.certificate_chain.inline_string;
      const keyPem: string = identity.private_key.inline_string;
      expect(new X509Certificate(certChainPem).subjectAltName).toBe(`URI:${SPIFFE_ID}`);

      // The handshake Envoy would make: chain verified against ROOTCA, then the SAN matcher.
      const s = await tlsConnect({ servername: xds.sni, ALPNProtocols: xds.alpn, ca: rootPem, cert: certChainPem, key: keyPem, checkServerIdentity: sanCheck(xds.sans) });
      expect(s.authorized).toBe(true);
      expect(s.alpnProtocol).toBe('h2');
      s.destroy();
      // The same check fails for a name the certificate lacks, and without the mesh's root.
      await expect(tlsConnect({ servername: xds.sni, ca: rootPem, cert: certChainPem, key: keyPem, checkServerIdentity: sanCheck([{ san_type: 'DNS', matcher: { exact: 'meshpilot.other-namespace.svc.cluster.local' } }]) })).rejects.toThrow(/no SAN/);
      const stranger = await createCA('not the mesh');
      await expect(tlsConnect({ servername: xds.sni, ca: stranger.certPem, cert: certChainPem, key: keyPem })).rejects.toThrow(/certificate/);

      // ADS over that channel with the bootstrap's node: served, and bound to the certificate's identity.
      const creds = grpc.credentials.createSsl(Buffer.from(rootPem), Buffer.from(keyPem), Buffer.from(certChainPem));
      const options = { 'grpc.ssl_target_name_override': xds.sni, 'grpc.default_authority': xds.sni, 'grpc.use_local_subchannel_pool': 1 };
      ads = new RawAdsClient(cp.xdsAddress, options, creds);
      ads.send({ node: { id: boot.node.id, metadata: toStruct(boot.node.metadata) }, type_url: CDS, resource_names: [] });
      const answer = await ads.next(10_000);
      expect(answer.type_url).toBe(CDS);
      expect(answer.resources.length).toBeGreaterThan(0);
      const stream = [...cp.ads.streams].find((st) => st.proxy?.id === boot.node.id);
      expect(stream && cp.ads.peerIdentity(stream)).toBe(SPIFFE_ID);
      // A node claiming another service account with this certificate is refused.
      other = new RawAdsClient(cp.xdsAddress, options, creds);
      other.send({ node: { id: boot.node.id, metadata: toStruct({ ...boot.node.metadata, SERVICE_ACCOUNT: 'ratings' }) }, type_url: CDS, resource_names: [] });
      await expect(other.next(10_000)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    } finally {
      ads?.close();
      other?.close();
      for (const c of streams) c.cancel();
      sds.close();
      await agent.stop();
    }
  });
});

type SdsClient = grpc.Client & { StreamSecrets(): grpc.ClientDuplexStream<SdsRequest, SdsResponse> };
function sdsClient(socket: string): SdsClient {
  const def = protoLoader.loadSync('envoy/service/secret/v3/sds.proto', { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return new pkg.envoy.service.secret.v3.SecretDiscoveryService(`unix:${socket}`, grpc.credentials.createInsecure());
}
