// Component health for /healthz and /readyz. Each part of the control plane (a config source, the
// model, the xDS server; later each Kubernetes cluster) registers a check, so a failing probe
// names the part that fails and says why.

export interface ComponentStatus {
  ok: boolean;
  /** One line a person can act on: what is wrong, or what is there. */
  detail: string;
  /** Working but impaired (e.g. a cluster serving its last known state): reported, not failing. */
  degraded?: boolean;
}

/**
 * What a source whose components come and go (e.g. one per Kubernetes cluster) reports for each:
 * not ready keeps /readyz failing; unhealthy but ready (serving its last known state) is degraded.
 */
export interface ComponentHealth {
  /** e.g. `cluster/east` */
  name: string;
  ready: boolean;
  healthy: boolean;
  detail: string;
  [extra: string]: unknown;
}

/** A source of dynamic components; they are never liveness checks. */
export interface HealthProvider {
  health(): ComponentHealth[];
}

export interface HealthComponent {
  /** e.g. `config-source/file`, `xds-server`, `cluster/east`. */
  name: string;
  check(): ComponentStatus;
  /**
   * Whether a failure means the process should be restarted (fails /healthz too). Default false:
   * it only fails /readyz, e.g. a source that is retrying by itself.
   */
  liveness?: boolean;
}

export interface HealthReport {
  ok: boolean;
  /** Dynamic components also carry their extra fields (see ComponentHealth). */
  components: Array<{ name: string } & ComponentStatus & Record<string, unknown>>;
  /** Names of the failing components, for a one-line reason. */
  failing: string[];
  /** Names of the degraded components. */
  degraded: string[];
}

export class Health {
  private readonly components = new Map<string, HealthComponent>();
  private readonly providers = new Set<HealthProvider>();

  /** Adds a source of dynamic components; returns a function that removes it. */
  addProvider(provider: HealthProvider): () => void {
    this.providers.add(provider);
    return () => this.providers.delete(provider);
  }

  /** Adds (or replaces, by name) a component; returns a function that removes it. */
  add(component: HealthComponent): () => void {
    this.components.set(component.name, component);
    return () => {
      if (this.components.get(component.name) === component) this.components.delete(component.name);
    };
  }

  /** Readiness counts every component; liveness only those marked `liveness`. */
  report(kind: 'ready' | 'live'): HealthReport {
    const components = [...this.components.values()]
      .filter((c) => kind === 'ready' || c.liveness)
      .map((c) => ({ name: c.name, ...safeCheck(c) }));
    for (const p of this.providers) {
      // Dynamic components are never a reason to restart: for liveness they only report.
      // Their extra fields (e.g. a cluster's lastErrorAt, origin, network) are part of the report.
      for (const { name, ready, healthy, detail, ...extra } of p.health()) {
        components.push({ name, ...extra, ok: kind === 'live' || ready, detail, ...(healthy ? {} : { degraded: true }) });
      }
    }
    const failing = components.filter((c) => !c.ok).map((c) => c.name);
    const degraded = components.filter((c) => c.degraded).map((c) => c.name);
    return { ok: failing.length === 0, components, failing, degraded };
  }
}

function safeCheck(c: HealthComponent): ComponentStatus {
  try {
    const s = c.check();
    return { ok: s.ok, detail: s.detail, ...(s.degraded ? { degraded: true } : {}) };
  } catch (e) {
    // A check that throws is a failing check, not a failing probe endpoint.
    return { ok: false, detail: `health check failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}
