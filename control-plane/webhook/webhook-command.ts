// `meshpilot webhook`: runs the admission webhook until SIGINT/SIGTERM.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { loadInjectionConfig } from '../inject/config.ts';
import { ensureCaBundle, kubernetesWebhookConfigClient } from './ca-bundle.ts';
import { cachedNamespaceLabels, kubernetesNamespaceReader, type Labels } from './namespace-labels.ts';
import { describeNamespaceLabelSource, type ClusterAccess, type NamespaceLabelSource } from './namespace-source.ts';
import { readCertFiles, selfSignedCert } from './serving-cert.ts';
import { startWebhookServer, type WebhookServer } from './server.ts';
import { Registry } from 'prom-client';
import { WebhookMetrics } from '../observe/metrics.ts';

export interface WebhookCommandOptions {
  host: string;
  port: number;
  cert?: string;
  key?: string;
  /** Where a mounted certificate is looked for (tls.crt, tls.key) when --cert/--key are not given. */
  certDir?: string;
  /** The webhook's Service (name and namespace), for the self-made certificate's names. */
  service: string;
  serviceNamespace: string;
  /** MutatingWebhookConfiguration whose caBundle to set when meshpilot makes its own CA. */
  webhookConfig?: string;
  /**
   * Where namespace labels come from (namespace-source.ts). Default: `namespaceLabels` when given
   * (static), else the cluster when there is one, else none (every namespace has no labels).
   */
  namespaces?: NamespaceLabelSource;
  /** Static namespace labels (local runs, benchmarks, tests). */
  namespaceLabels?: Record<string, Labels>;
  /** The cluster to read namespaces from and, with `webhookConfig`, to patch. */
  cluster?: ClusterAccess;
  injectionConfig?: string;
  maxBodyBytes?: number;
  logger: Logger;
}

export async function runWebhook(o: WebhookCommandOptions): Promise<WebhookServer> {
  const config = loadInjectionConfig(o.injectionConfig);
  if ((o.cert === undefined) !== (o.key === undefined)) throw new Error('--cert and --key go together');
  const files = o.cert && o.key ? { cert: o.cert, key: o.key } : mountedCert(o.certDir);
  const cert = files ? readCertFiles(files.cert, files.key) : await selfSignedCert(o.service, o.serviceNamespace, config.xds.clusterDomain);
  if (o.webhookConfig && cert.caPem && !o.cluster) {
    throw new Error(`--webhook-config ${o.webhookConfig} needs the cluster to write the caBundle to: give --kubeconfig, or run in a pod (or mount a certificate instead)`);
  }
  const source: NamespaceLabelSource = o.namespaces
    ?? (o.namespaceLabels ? { kind: 'static', labels: o.namespaceLabels, origin: 'the given labels' } : o.cluster ? { kind: 'cluster', cluster: o.cluster } : { kind: 'none' });
  const namespaceLabels = await namespaceLabelReader(source);
  o.logger.info(`namespace labels: ${describeNamespaceLabelSource(source)}`);
  // The webhook runs as its own process: its admission metrics are served at its own GET /metrics.
  const registry = new Registry();
  const metrics = new WebhookMetrics(registry);
  const server = await startWebhookServer({
    metrics: registry,
    onAdmission: (outcome, seconds) => metrics.onAdmission(outcome, seconds),
    host: o.host,
    port: o.port,
    cert,
    ...(files ? { certFiles: files } : {}),
    deps: { config, namespaceLabels },
    ...(o.maxBodyBytes ? { maxBodyBytes: o.maxBodyBytes } : {}),
    logger: o.logger,
  });
  if (cert.caPem && !o.webhookConfig) {
    o.logger.warn('self-made CA not published anywhere (no --webhook-config): the API server will not trust this webhook');
  }
  if (cert.caPem && o.webhookConfig) {
    const updated = await ensureCaBundle(await kubernetesWebhookConfigClient(o.cluster?.kubeConfig), o.webhookConfig, cert.caPem);
    o.logger.info({ webhookConfig: o.webhookConfig, updated }, `caBundle of ${o.webhookConfig} set to meshpilot's own CA (${updated} webhooks updated)`);
  }
  o.logger.info({ url: server.url, selfSigned: Boolean(cert.caPem) }, `sidecar injection webhook listening on ${server.url}/inject`);
  return server;
}

async function namespaceLabelReader(s: NamespaceLabelSource): Promise<(namespace: string) => Promise<Labels>> {
  switch (s.kind) {
    case 'static':
      return async (ns) => s.labels[ns] ?? {};
    case 'cluster':
      return cachedNamespaceLabels(await kubernetesNamespaceReader(s.cluster.kubeConfig));
    case 'none':
      return async () => ({});
  }
}

/** A Secret mounted in `dir` (kubernetes.io/tls: tls.crt and tls.key), if there is one. */
function mountedCert(dir: string | undefined): { cert: string; key: string } | undefined {
  if (!dir) return undefined;
  const files = { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
  return fs.existsSync(files.cert) && fs.existsSync(files.key) ? files : undefined;
}
