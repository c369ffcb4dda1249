// Public types of the rule-input stage: what a loaded Istio object looks like, and how errors are
// reported (always with file, line, column and field path).
import type {
  AuthorizationPolicySpec,
  DestinationRuleSpec,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
  RateLimitSpec,
  CanarySpec,
  FaultExperimentSpec,
  ServiceEntrySpec,
  SidecarSpec,
  VirtualServiceSpec,
  WorkloadEntrySpec,
  GatewaySpec,
} from './schemas/index.ts';

/** A position in a config file. Line and column are 1-based. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

/** One problem found in the input. `path` is a field path such as `spec.http[0].route[1].weight`. */
export interface ConfigError extends SourcePos {
  path: string;
  message: string;
  kind?: string;
  name?: string;
  namespace?: string;
  /** The whole file's text was not taken (unreadable, YAML syntax): none of its objects is new. */
  wholeFile?: boolean;
  /** A second object with the key of one in force (`kind`, `name`, `namespace`); it is ignored. */
  duplicate?: boolean;
}

/** `file:line:col path: message (Kind ns/name)`; the path and the suffix are left out when unknown. */
export function formatError(e: ConfigError): string {
  let out = `${e.file}:${e.line}:${e.col} `;
  out += e.path ? `${e.path}: ${e.message}` : e.message;
  if (e.kind && e.name) out += ` (${e.kind} ${e.namespace ?? 'default'}/${e.name})`;
  return out;
}

export const KINDS = ['VirtualService', 'DestinationRule', 'ServiceEntry', 'WorkloadEntry', 'AuthorizationPolicy', 'PeerAuthentication', 'RequestAuthentication', 'RateLimit', 'Sidecar', 'Gateway', 'Canary', 'FaultExperiment'] as const;
export type Kind = (typeof KINDS)[number];

export type SpecOf<K> = K extends 'VirtualService'
  ? VirtualServiceSpec
  : K extends 'DestinationRule'
    ? DestinationRuleSpec
    : K extends 'ServiceEntry'
      ? ServiceEntrySpec
      : K extends 'WorkloadEntry'
        ? WorkloadEntrySpec
        : K extends 'AuthorizationPolicy'
          ? AuthorizationPolicySpec
          : K extends 'PeerAuthentication'
            ? PeerAuthenticationSpec
            : K extends 'RequestAuthentication'
              ? RequestAuthenticationSpec
            : K extends 'Sidecar'
              ? SidecarSpec
            : K extends 'Gateway'
              ? GatewaySpec
            : K extends 'Canary'
              ? CanarySpec
            : K extends 'FaultExperiment'
              ? FaultExperimentSpec
              : RateLimitSpec;

/** A validated Istio object. Frozen: the same instance may be shared by several load results. */
export interface ConfigObject<K extends Kind = Kind> {
  kind: K;
  apiVersion: string;
  name: string;
  /** `metadata.namespace`, or 'default' when the file gives none. */
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The spec as written (Istio field names); Istio's defaults are not filled in here. */
  spec: SpecOf<K>;
  /** `${kind}/${namespace}/${name}` */
  key: string;
  /** Where the object's document starts (its first key). */
  source: SourcePos;
  /**
   * Position of a field in this object's document, e.g. ['spec','http',0,'route',1,'destination','host'].
   * Scalars give the value's position, maps and lists the position of their key (or list item).
   * A path that does not exist falls back to its nearest existing ancestor.
   */
  locate(path: (string | number)[]): SourcePos;
}

export interface LoadResult {
  objects: ConfigObject[];
  errors: ConfigError[];
  /** Network -> its gateways (address, port), for callers in other networks. */
  networkGateways?: Record<string, Array<{ address: string; port: number }>>;
}

/** Narrows a ConfigObject to one kind, so that `spec` gets that kind's type. */
export function isKind<K extends Kind>(o: ConfigObject, kind: K): o is ConfigObject<K> {
  return o.kind === kind;
}

/** The objects of one kind, in their order, typed as that kind (see `isKind`). */
export function ofKind<K extends Kind>(objects: readonly ConfigObject[], kind: K): ConfigObject<K>[] {
  return objects.filter((o): o is ConfigObject<K> => isKind(o, kind));
}
