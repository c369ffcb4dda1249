// Sidecar rules, resolved: which one applies to a proxy (Istio's order: the namespace's Sidecar
// whose workloadSelector matches, else the namespace's selector-less one, else the root
// namespace's selector-less one) and what it lets the proxy see. Parts meshpilot does not act on
// yet are accepted with a warning saying so, never silently.
import { type ConfigObject, isKind } from '../config/types.ts';
import type { IssueList } from './issues.ts';
import { originOf } from './issues.ts';
import type { MeshSettings } from './mesh-identity.ts';
import { labelsMatch } from './services.ts';
import type { Origin, Protocol } from './types.ts';

/** An egress host: `namespace` is a name, `*`, `.` (the proxy's own) or `~` (none); `host` a name, `*.suffix` or `*`. */
export interface EgressHost { namespace: string; host: string }

export interface SidecarEgress {
  /** Absent: every port (the catch-all listener). */
  port?: number;
  hosts: EgressHost[];
}

export interface SidecarIngress {
  port: number;
  protocol: Protocol;
  /** Where the traffic goes: `127.0.0.1:PORT`, `0.0.0.0:PORT` (the workload's own IP) or `unix://path`. */
  defaultEndpoint?: string;
}

export type OutboundMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export interface SidecarScope {
  /** `Sidecar/namespace/name` */
  key: string;
  namespace: string;
  selector?: Record<string, string>;
  /** Absent: no egress given, every service is seen (Istio's default: every namespace, every host). */
  egress?: SidecarEgress[];
  ingress: SidecarIngress[];
  outboundTrafficPolicy?: OutboundMode;
  origin: Origin;
}

/** Each Sidecar object's scope, kept by object: an unchanged rule keeps its scope object, which the
 * translator's memo compares by identity. */
const scopes = new WeakMap<ConfigObject, SidecarScope>();

function protocolOf(p: string | undefined): Protocol {
  switch (p) {
    case 'HTTP': case 'HTTP2': case 'GRPC': case 'HTTPS': case 'TLS': return p;
    default: return 'TCP';
  }
}

function scopeOf(obj: ConfigObject<'Sidecar'>): SidecarScope {
  let s = scopes.get(obj);
  if (s) return s;
  const spec = obj.spec;
  const selector = spec.workloadSelector?.labels;
  s = {
    key: obj.key,
    namespace: obj.namespace,
    ...(selector ? { selector: { ...selector } } : {}),
    ...(spec.egress?.length
      ? {
          egress: spec.egress.map((e) => ({
            ...(e.port ? { port: e.port.number } : {}),
            hosts: e.hosts.map((h) => ({ namespace: h.slice(0, h.indexOf('/')), host: h.slice(h.indexOf('/') + 1) })),
          })),
        }
      : {}),
    ingress: (spec.ingress ?? []).map((i) => ({
      port: i.port.number,
      protocol: protocolOf(i.port.protocol),
      ...(i.defaultEndpoint ? { defaultEndpoint: i.defaultEndpoint } : {}),
    })),
    ...(spec.outboundTrafficPolicy?.mode ? { outboundTrafficPolicy: spec.outboundTrafficPolicy.mode } : {}),
    origin: originOf(obj),
  };
  scopes.set(obj, s);
  return s;
}

/** What is accepted but not acted on, said once per build. */
function warnUnsupported(obj: ConfigObject<'Sidecar'>, issues: IssueList): void {
  const spec = obj.spec;
  const no = (path: (string | number)[], what: string) => issues.warn(obj, ['spec', ...path], `${what} is not applied by meshpilot yet (accepted; see README "Sidecar scoping and exportTo")`);
  spec.egress?.forEach((e, i) => {
    if (e.bind !== undefined) no(['egress', i, 'bind'], 'egress bind (a listener on its own address)');
    if (e.captureMode !== undefined && e.captureMode !== 'DEFAULT' && e.captureMode !== 'IPTABLES') no(['egress', i, 'captureMode'], `captureMode ${e.captureMode}`);
  });
  spec.ingress?.forEach((l, i) => {
    if (l.bind !== undefined) no(['ingress', i, 'bind'], 'ingress bind (the listener stays on virtualInbound)');
    if (l.captureMode !== undefined && l.captureMode !== 'DEFAULT' && l.captureMode !== 'IPTABLES') no(['ingress', i, 'captureMode'], `captureMode ${l.captureMode}`);
    if (l.tls !== undefined) no(['ingress', i, 'tls'], 'ingress tls (TLS terminated with your own certificate)');
    if (l.connectionPool !== undefined) no(['ingress', i, 'connectionPool'], 'ingress connectionPool');
  });
  if (spec.inboundConnectionPool !== undefined) no(['inboundConnectionPool'], 'inboundConnectionPool');
  if (spec.outboundTrafficPolicy?.egressProxy !== undefined) no(['outboundTrafficPolicy', 'egressProxy'], 'egressProxy (unknown destinations pass through directly)');
}

/** The Sidecars in force, sorted by key; a second selector-less one in a namespace is an error. */
export function buildSidecars(objects: readonly ConfigObject[], issues: IssueList): SidecarScope[] {
  const out: SidecarScope[] = [];
  const wide = new Map<string, string>(); // namespace -> its selector-less Sidecar
  for (const obj of objects) {
    if (!isKind(obj, 'Sidecar')) continue;
    if (!obj.spec.workloadSelector) {
      const first = wide.get(obj.namespace);
      if (first) {
        issues.error(obj, ['spec'], `namespace ${obj.namespace} already has a Sidecar without workloadSelector (${first}); only one is allowed per namespace`);
        continue;
      }
      wide.set(obj.namespace, obj.key);
    }
    warnUnsupported(obj, issues);
    out.push(scopeOf(obj));
  }
  return out;
}

/** The Sidecar that applies to a workload, in Istio's order (the first by name among several that select it). */
export function sidecarFor(sidecars: readonly SidecarScope[], mesh: MeshSettings, namespace: string, labels: Record<string, string>): SidecarScope | undefined {
  let wide: SidecarScope | undefined;
  let root: SidecarScope | undefined;
  for (const s of sidecars) {
    if (s.namespace === namespace) {
      if (s.selector) {
        if (labelsMatch(s.selector, labels)) return s;
      } else wide ??= s;
    } else if (s.namespace === mesh.rootNamespace && !s.selector) root ??= s;
  }
  return wide ?? root;
}
