// Health of the parts of the control plane that can fail on their own (e.g. one Kubernetes
// cluster), for the admin API's /healthz and /readyz. Components are added, never special-cased.

export interface ComponentHealth {
  /** e.g. `cluster/east` */
  name: string;
  /** Ready to serve (e.g. initial sync done). Not ready keeps /readyz at 503. */
  ready: boolean;
  /** Working right now. Unhealthy is reported (and logged) but does not fail liveness. */
  healthy: boolean;
  detail: string;
  [extra: string]: unknown;
}

export interface HealthProvider {
  health(): ComponentHealth[];
}
