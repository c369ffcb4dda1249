// The xDS bootstrap for a proxyless gRPC workload: meshpilot over TLS with the agent's files, the
// node as translate/proxy.ts reads it, and the `default` certificate provider (file_watcher) that
// translated TLS contexts name.
import type { CertFilePaths } from './cert-files.ts';
import { writeFileAtomic } from './cert-files.ts';

export const CERT_PROVIDER_INSTANCE = 'default';

/**
 * `tls`: gRFC A65 channel credentials (grpc-go, grpc-java, grpc-core). @grpc/grpc-js-xds 1.14.1
 * only knows `google_default` and `insecure` and refuses a bootstrap without one of them, so
 * `insecure` is there for it (and needs a plaintext xDS port). Never both: a client that skips `tls`
 * would silently fall back to plaintext.
 */
export type XdsChannelCreds = 'tls' | 'insecure';

export interface GrpcBootstrapInput {
  xdsAddress: string;
  creds: XdsChannelCreds;
  files: CertFilePaths;
  nodeId: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount?: string;
  /** Seconds between re-reads of the files by gRPC's file_watcher. */
  refreshSeconds?: number;
}

export function grpcBootstrap(i: GrpcBootstrapInput): Record<string, unknown> {
  const channelCreds = i.creds === 'tls'
    ? { type: 'tls', config: { ca_certificate_file: i.files.caCertificateFile, certificate_file: i.files.certificateFile, private_key_file: i.files.privateKeyFile } }
    : { type: 'insecure' };
  return {
    xds_servers: [{ server_uri: i.xdsAddress, channel_creds: [channelCreds], server_features: ['xds_v3'] }],
    node: {
      id: i.nodeId,
      metadata: {
        GENERATOR: 'grpc',
        NAMESPACE: i.namespace,
        LABELS: i.labels,
        ...(i.serviceAccount ? { SERVICE_ACCOUNT: i.serviceAccount } : {}),
      },
      locality: {},
    },
    certificate_providers: {
      [CERT_PROVIDER_INSTANCE]: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: i.files.certificateFile,
          private_key_file: i.files.privateKeyFile,
          ca_certificate_file: i.files.caCertificateFile,
          refresh_interval: `${i.refreshSeconds ?? 5}s`,
        },
      },
    },
  };
}

export function writeGrpcBootstrap(file: string, i: GrpcBootstrapInput): void {
  writeFileAtomic(file, `${JSON.stringify(grpcBootstrap(i), null, 2)}\n`);
}
