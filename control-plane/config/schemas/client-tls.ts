// DestinationRule trafficPolicy.tls (Istio's ClientTLSSettings): how a caller's proxy opens
// connections to the destination. Checked the way Istio checks it, plus what meshpilot cannot do.
import { z } from 'zod';
import { istioEnum, withRule } from './common.ts';

const path = z.string().min(1, { error: 'must not be empty (leave the field out instead)' });

export const ClientTLSSettings = withRule(
  z.strictObject({
    mode: istioEnum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']),
    clientCertificate: path.optional(),
    privateKey: path.optional(),
    caCertificates: path.optional(),
    credentialName: z.string().optional(),
    subjectAltNames: z.array(z.string().min(1, { error: 'must not be empty' })).optional(),
    sni: z.string().min(1, { error: 'must not be empty (leave the field out instead)' }).optional(),
    insecureSkipVerify: z.boolean().optional(),
    caCrl: path.optional(),
  }),
  (v, report) => {
    const mode = v['mode'];
    const files = ['clientCertificate', 'privateKey', 'caCertificates', 'credentialName', 'caCrl'].filter((k) => v[k] !== undefined);
    if (mode === 'ISTIO_MUTUAL' || mode === 'DISABLE') {
      for (const k of files) report([k], `cannot be set with mode ${mode} (${mode === 'ISTIO_MUTUAL' ? 'the mesh certificates are used' : 'no TLS'})`);
    }
    // As Istio: the credential (Secret) carries the certificates, so the file paths are not also given.
    if (v['credentialName'] !== undefined && (mode === 'SIMPLE' || mode === 'MUTUAL')) {
      for (const k of ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl']) if (v[k] !== undefined) report([k], 'cannot be set with credentialName (the Secret holds the certificates)');
    }
    if (v['caCrl'] !== undefined && mode !== 'ISTIO_MUTUAL' && mode !== 'DISABLE') report(['caCrl'], 'not supported by meshpilot');
    // As Istio: skipping verification and saying what to verify against contradict each other.
    if (v['insecureSkipVerify'] === true) {
      for (const k of ['caCertificates', 'caCrl', 'subjectAltNames']) if (v[k] !== undefined) report([k], 'cannot be set with insecureSkipVerify: true (nothing is verified)');
    }
    if (mode === 'MUTUAL' && v['credentialName'] === undefined) {
      if (v['clientCertificate'] === undefined) report(['clientCertificate'], 'MUTUAL needs clientCertificate (or credentialName)');
      if (v['privateKey'] === undefined) report(['privateKey'], 'MUTUAL needs privateKey (or credentialName)');
    }
  },
);

export type ClientTLSSettings = z.infer<typeof ClientTLSSettings>;
