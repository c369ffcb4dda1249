// security.istio.io PeerAuthentication: which mutual TLS a workload accepts on its inbound side.
// Istio's fields, all of them: `selector`, `mtls.mode`, `portLevelMtls` (keyed by workload port).
import { z } from 'zod';
import { istioEnum, labels, withRule } from './common.ts';

/** UNSET inherits from the enclosing scope (port -> workload -> namespace -> mesh). */
export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
export type MtlsModeIn = (typeof MTLS_MODES)[number];

export const MutualTls = z.strictObject({ mode: istioEnum(MTLS_MODES).optional() });

export const PeerAuthenticationSpec = withRule(
  z.strictObject({
    selector: z.strictObject({ matchLabels: labels.optional() }).optional(),
    mtls: MutualTls.optional(),
    /** Workload (target) port number, as a string key in YAML, -> mode for that port. */
    portLevelMtls: z.record(z.string(), MutualTls).optional(),
  }),
  (v, report) => {
    const ports = v['portLevelMtls'];
    if (ports && typeof ports === 'object') {
      for (const key of Object.keys(ports)) {
        const n = Number(key);
        if (!/^\d+$/.test(key) || n < 1 || n > 65535) report(['portLevelMtls', key], `${JSON.stringify(key)} is not a port number from 1 to 65535`);
      }
      // As in Istio: a port only means something on a known set of workloads.
      const sel = v['selector'] as { matchLabels?: Record<string, string> } | undefined;
      if (Object.keys(ports).length > 0 && Object.keys(sel?.matchLabels ?? {}).length === 0) {
        report(['portLevelMtls'], 'portLevelMtls needs a selector with matchLabels (a port means something only for the workloads it selects)');
      }
    }
  },
);

export type PeerAuthenticationSpec = z.infer<typeof PeerAuthenticationSpec>;
