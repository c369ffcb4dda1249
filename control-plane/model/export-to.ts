import type { ConfigObject } from '../config/types.ts';
import type { IssueSink } from './issues.ts';
// exportTo, resolved: the namespaces that see an object. Istio's default (no exportTo) is every
// namespace; `.` is the object's own, `~` none.
export type ExportTo = readonly string[];

/** undefined: every namespace (also for `*`); otherwise the namespace names, `.` resolved. */
export function resolveExportTo(list: readonly string[] | undefined, ownNamespace: string): ExportTo | undefined {
  if (!list || list.length === 0 || list.includes('*')) return undefined;
  if (list.includes('~')) return [];
  return [...new Set(list.map((v) => (v === '.' ? ownNamespace : v)))].sort();
}

export function exportedTo(exportTo: ExportTo | undefined, namespace: string): boolean {
  return exportTo === undefined || exportTo.includes(namespace);
}

/** `{ exportTo }` when the object limits who sees it, for spreading into a model object. */
export function exportField(spec: { exportTo?: string[] | undefined }, ownNamespace: string): { exportTo?: ExportTo } {
  const e = resolveExportTo(spec.exportTo, ownNamespace);
  return e ? { exportTo: e } : {};
}

/** DestinationRule exportTo is checked but not enforced: the rule's policy is part of the cluster
 * every caller that sees the host gets (one cluster per host and port, not per namespace). */
export function warnDestinationRuleExportTo(obj: ConfigObject<'DestinationRule'>, issues: IssueSink): void {
  const e = resolveExportTo(obj.spec.exportTo, obj.namespace);
  if (e) issues.warn(obj, ['spec', 'exportTo'], 'DestinationRule exportTo is not enforced by meshpilot yet: the rule applies to every caller that sees its host (see README "Sidecar scoping and exportTo")');
}
