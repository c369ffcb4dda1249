// Prometheus metrics (prom-client), in a Registry of their own so several control planes in one
// process (tests) never share counters. Kept cheap on the push path: no per-proxy labels; counters
// are pre-bound per xDS type; gauges that describe state (connected proxies, rejected rules) are
// computed when scraped, not maintained on every event.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MeshState } from '../model/compile.ts';
import type { AdsObserver, XdsStream } from '../xds/ads-server.ts';
import type { SnapshotCache } from '../xds/snapshot-cache.ts';
import { CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG, SECRET } from '../translate/type-urls.ts';
import type { Authority } from '../ca/authority.ts';
import type { CaObserver, CaOutcome } from '../ca/ca-service.ts';
import type { Leadership } from '../kube/leadership.ts';

const CA_OUTCOMES: CaOutcome[] = ['issued', 'denied', 'unauthenticated', 'invalid', 'error'];

/** Short xDS type names, as Istio's metrics label them. */
const SHORT: Record<string, string> = { [CLUSTER]: 'cds', [ENDPOINTS]: 'eds', [LISTENER]: 'lds', [ROUTE_CONFIG]: 'rds', [SECRET]: 'sds' };
export const shortType = (type: string): string => SHORT[type] ?? 'other';
// The types a stream still has to ACK are a bit set: this runs on every push and ACK.
const BITS: Record<string, number> = { [CLUSTER]: 1, [ENDPOINTS]: 2, [LISTENER]: 4, [ROUTE_CONFIG]: 8 };
const typeBit = (type: string): number => BITS[type] ?? 16;

/** Buckets from 5 ms to about 80 s: pushes are fast, convergence after a NACK can take minutes. */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80];

export type AdmissionOutcome = 'injected' | 'skipped' | 'denied' | 'error' | (string & {});

/** The injection webhook's series; registered in the control plane's registry or the webhook's own. */
export class WebhookMetrics {
  readonly admissions: Counter;
  readonly admissionDuration: Histogram;
  constructor(registry: Registry) {
    this.admissions = new Counter({ name: 'meshpilot_webhook_admissions_total', help: 'Admission requests answered by the injection webhook, by outcome', labelNames: ['outcome'], registers: [registry] });
    this.admissionDuration = new Histogram({
      name: 'meshpilot_webhook_admission_duration_seconds',
      help: 'Time to answer an admission request',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
  }

  onAdmission(outcome: AdmissionOutcome, seconds: number): void {
    this.admissions.inc({ outcome });
    this.admissionDuration.observe({ outcome }, seconds);
  }
}

export class Metrics implements AdsObserver, CaObserver {
  readonly registry = new Registry();
  readonly pushes = new Counter({ name: 'meshpilot_xds_pushes_total', help: 'xDS responses sent, by type', labelNames: ['type'], registers: [this.registry] });
  readonly nacks = new Counter({ name: 'meshpilot_xds_nacks_total', help: 'Responses rejected by proxies (one per rejected nonce), by type', labelNames: ['type'], registers: [this.registry] });
  readonly pushDuration = new Histogram({
    name: 'meshpilot_push_duration_seconds',
    help: 'From a config change being applied to the last connected stream having been sent it (one observation per push round)',
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly convergence = new Histogram({
    name: 'meshpilot_proxy_convergence_seconds',
    help: 'From a config change being applied to a proxy ACKing every type it was pushed because of it (per proxy; a NACKed change converges when a later version is ACKed)',
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly clusterUp = new Gauge({ name: 'meshpilot_cluster_source_up', help: '1 when the config source for a cluster is connected and synced, else 0', labelNames: ['cluster'], registers: [this.registry] });
  /** Admission metrics, when the webhook runs in this process (tests); `meshpilot webhook` has its own. */
  readonly webhook = new WebhookMetrics(this.registry);
  readonly certsIssued = new Counter({ name: 'meshpilot_certs_issued_total', help: 'Certificate signing requests answered by the mesh CA, by outcome', labelNames: ['outcome'], registers: [this.registry] });

  private readonly pushChild = new Map<string, Counter.Internal>();
  /** Per stream: when the oldest change it has not converged on was applied, and the types still to ACK. */
  private readonly pending = new WeakMap<object, { since: number; types: number }>();

  constructor(private readonly cache: SnapshotCache) {
    for (const t of [...Object.values(SHORT), 'other']) {
      this.pushChild.set(t, this.pushes.labels({ type: t }));
      this.nacks.labels({ type: t }); // NACK series exist at 0 before the first one
    }
    for (const outcome of CA_OUTCOMES) this.certsIssued.labels({ outcome });
  }

  /** The CA's expiry gauge, computed when scraped. */
  observeCa(ca: Authority): void {
    new Gauge({
      name: 'meshpilot_ca_root_expiry_seconds',
      help: 'Seconds until the mesh CA can no longer sign: the earlier expiry of its signing certificate and its root',
      registers: [this.registry],
      collect() {
        this.set(Math.round((ca.signingExpiry.getTime() - Date.now()) / 1000));
      },
    });
  }

  /** 1 while this replica leads (writes to the cluster), else 0; computed when scraped. */
  observeLeader(leadership: Leadership): void {
    new Gauge({
      name: 'meshpilot_leader',
      help: '1 while this replica is the leader (the one that writes rule status and the CA trust bundle ConfigMaps), else 0; 1 without leader election',
      registers: [this.registry],
      collect() {
        this.set(leadership.isLeader() ? 1 : 0);
      },
    });
  }

  /** For the mesh CA: one call per CreateCertificate answered. */
  caRequest(outcome: CaOutcome): void {
    this.certsIssued.inc({ outcome });
  }

  /** State gauges, computed at scrape time from what the control plane already holds. */
  observeState(streams: () => Iterable<XdsStream>, state: () => MeshState | undefined): void {
    new Gauge({
      name: 'meshpilot_connected_proxies',
      help: 'Connected proxies, by client kind and ADS protocol',
      labelNames: ['kind', 'protocol'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const kind of ['envoy', 'grpc']) for (const protocol of ['sotw', 'delta']) this.set({ kind, protocol }, 0);
        for (const s of streams()) if (s.proxy) this.inc({ kind: s.proxy.kind, protocol: s.protocol });
      },
    });
    new Gauge({
      name: 'meshpilot_rejected_rules',
      help: 'Rules whose newest version is not in force (their last good version, if any, is)',
      registers: [this.registry],
      collect() {
        this.set(state()?.rejected.length ?? 0);
      },
    });
    new Gauge({
      name: 'meshpilot_config_errors',
      help: 'Errors in the config sources (schema and cross-object)',
      registers: [this.registry],
      collect() {
        this.set(state()?.errors.length ?? 0);
      },
    });
    const cache = this.cache;
    new Gauge({
      name: 'meshpilot_config_generation',
      help: 'Model changes applied since start',
      registers: [this.registry],
      collect() {
        this.set(cache.generation);
      },
    });
  }

  // --- AdsObserver: called by the xDS streams.

  sent(stream: object, type: string, onChange: boolean): void {
    this.pushChild.get(shortType(type))!.inc();
    if (!onChange) return;
    let p = this.pending.get(stream);
    if (!p) this.pending.set(stream, (p = { since: this.cache.changedAt, types: 0 }));
    p.types |= typeBit(type);
  }

  acked(stream: object, type: string): void {
    const p = this.pending.get(stream);
    const bit = typeBit(type);
    if (!p || !(p.types & bit)) return;
    p.types &= ~bit;
    if (p.types !== 0) return;
    this.pending.delete(stream);
    this.convergence.observe((performance.now() - p.since) / 1000);
  }

  nacked(_stream: object, type: string): void {
    this.nacks.inc({ type: shortType(type) });
  }

  pushRoundDone(seconds: number): void {
    this.pushDuration.observe(seconds);
  }

  // --- Hooks for the other sources of events.

  /** For the injection webhook: one call per admission request answered. */
  onAdmission(outcome: AdmissionOutcome, seconds: number): void {
    this.webhook.onAdmission(outcome, seconds);
  }

  /** For per-cluster config sources (Kubernetes): up or down; `remove` when a cluster is dropped. */
  setClusterHealth(cluster: string, up: boolean): void {
    this.clusterUp.set({ cluster }, up ? 1 : 0);
  }

  removeCluster(cluster: string): void {
    this.clusterUp.remove({ cluster });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
