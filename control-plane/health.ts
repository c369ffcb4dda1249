// Component health for /healthz and /readyz. Each part of the control plane (a config source, the
// model, the xDS server; later each Kubernetes cluster) registers a check, so a failing probe
// names the part that fails and says why.

export interface ComponentStatus {
  ok: boolean;
  /** One line a person can act on: what is wrong, or what is there. */
  detail: string;
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
  components: Array<{ name: string } & ComponentStatus>;
  /** Names of the failing components, for a one-line reason. */
  failing: string[];
}

export class Health {
  private readonly components = new Map<string, HealthComponent>();

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
    const failing = components.filter((c) => !c.ok).map((c) => c.name);
    return { ok: failing.length === 0, components, failing };
  }
}

function safeCheck(c: HealthComponent): ComponentStatus {
  try {
    const s = c.check();
    return { ok: s.ok, detail: s.detail };
  } catch (e) {
    // A check that throws is a failing check, not a failing probe endpoint.
    return { ok: false, detail: `health check failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}
