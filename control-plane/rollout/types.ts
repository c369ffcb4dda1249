// What the rollout stage shares: canaries and fault experiments as the model resolves them, the
// state the leader keeps for each, the load figures they are judged on, and the runtime overlay
// that turns that state into the weights and faults proxies get. The decisions themselves are pure
// (decide-canary.ts, decide-experiment.ts); the clock and the store live in controller.ts.
import type { FaultPolicy, Origin } from '../model/types.ts';

/** Load reported for one cluster over a span of time, summed across every reporting proxy. */
export interface LoadFigures {
  /** Requests that finished in the span (succeeded + failed). */
  completed: number;
  succeeded: number;
  failed: number;
  /** Requests issued in the span. */
  issued: number;
  /** In flight at the latest report of each proxy (summed). */
  inFlight: number;
  /** Distinct proxies whose reports fall in the span. */
  proxies: number;
}

/** Answers "how did this cluster do between two instants" (load/load-window.ts implements it). */
export interface LoadQuery {
  figures(cluster: string, sinceMs: number, untilMs: number): LoadFigures;
}

/** A Canary rule, resolved by the model (model/canaries.ts). */
export interface CanaryRule {
  /** `Canary/<namespace>/<name>`. */
  key: string;
  namespace: string;
  name: string;
  /** The VirtualService host (FQDN) and its http route name (`http[].name`) this Canary drives. */
  host: string;
  route: string;
  /** The ingress host the Canary named, when its route is of a rule bound to gateways only (`host` is then the service it sends to). */
  gatewayHost?: string;
  /** The VirtualService the route is in (`VirtualService/<ns>/<name>`). */
  virtualService: string;
  stable: { subset: string; clusters: string[] };
  canary: { subset: string; clusters: string[] };
  /** Canary weights in percent, strictly increasing, the last one 100 (the schema requires it). */
  steps: number[];
  intervalMs: number;
  analysis: {
    /** Canary requests completed in an interval below which the step is held, not judged. */
    minRequests: number;
    /** Percent (0-100) the canary's success rate must reach. */
    minSuccessRate?: number;
    /** Percentage points the canary's success rate may fall below the stable's. */
    maxDropFromStable?: number;
    /** Failed checks (in total, for this rollout) that roll it back. */
    maxFailedChecks: number;
  };
  /** After the last step: keep 100% canary (`promote`) or hand the route back to the VirtualService (`handBack`). */
  finish: 'promote' | 'handBack';
  /** Digest of host, route, subsets and steps: a new revision starts the rollout over. */
  revision: string;
  origin: Origin;
}

/** A fault experiment, resolved by the model (model/experiments.ts). */
export interface ExperimentRule {
  /** `FaultExperiment/<namespace>/<name>`. */
  key: string;
  namespace: string;
  name: string;
  host: string;
  /** http route names it applies to; empty: every http route of the host's tables. */
  routes: string[];
  /** The model route names (`<vs-ns>/<vs-name>/<http name>`) of `routes`, in every table of the host; empty when `routes` is. */
  routeNames: string[];
  fault: FaultPolicy;
  /** Epoch ms after which it stops. */
  expiresAtMs: number;
  guard?: {
    /** Percent: the service's success rate (requests that reached it) must stay at or above. */
    minSuccessRate: number;
    /** Fewer completed requests than this in the window: no judgement. */
    minRequests: number;
    windowMs: number;
  };
  /** Every cluster of the host: what the guard reads. */
  clusters: string[];
  revision: string;
  origin: Origin;
}

export type CanaryPhase = 'Progressing' | 'Paused' | 'Promoted' | 'RolledBack';

/** What the leader keeps per Canary (state dir file / Kubernetes status). Plain JSON. */
export interface CanaryState {
  revision: string;
  phase: CanaryPhase;
  /** Index into steps of the current step. */
  step: number;
  /** Canary weight now, percent. */
  weight: number;
  /** Epoch ms the current step (or pause, or outcome) began. */
  since: number;
  failedChecks: number;
  /** Why it is paused, rolled back or promoted; the last check's note while progressing. */
  reason?: string;
  /** Promoted with finish handBack: the VirtualService's own weights apply again. */
  handedBack?: boolean;
  /** Epoch ms of the last judgement of this step that held it (too little traffic): the next is one interval later. */
  checkedAt?: number;
}

export type CanaryCommand = 'promote' | 'pause' | 'resume' | 'abort';

export type ExperimentPhase = 'Running' | 'Expired' | 'Tripped' | 'Stopped';

export interface ExperimentState {
  revision: string;
  phase: ExperimentPhase;
  since: number;
  reason?: string;
}

/** What the overlay needs: the canary weight per Canary key, and which experiments inject now. */
export interface RuntimeState {
  /** Canary key -> canary weight in percent; absent key: the VirtualService's own weights. */
  canaryWeights: ReadonlyMap<string, number>;
  /** Keys of the experiments whose faults are injected now. */
  activeExperiments: ReadonlySet<string>;
}

export const NO_RUNTIME: RuntimeState = { canaryWeights: new Map(), activeExperiments: new Set() };
