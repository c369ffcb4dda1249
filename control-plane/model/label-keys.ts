// The label keys any rule looks at when deciding what a proxy gets: route `sourceLabels`, rate
// limit override sources, authorization policy selectors, DestinationRule failoverPriority keys. Proxies that agree on these keys get the
// same config, so they can share one translation however many other labels they carry.
import type { Model } from './types.ts';

export function labelKeysUsed(model: Model): Set<string> {
  const keys = new Set<string>();
  const add = (labels: Record<string, string> | undefined) => Object.keys(labels ?? {}).forEach((k) => keys.add(k));
  for (const t of model.routeTables) for (const r of t.routes) for (const m of r.matches) add(m.sourceLabels);
  for (const t of model.l4Tables) for (const r of t.routes) for (const m of r.matches) add(m.sourceLabels);
  for (const rl of model.rateLimits) for (const o of rl.overrides) add(o.source.labels);
  for (const ap of model.authorizationPolicies) add(ap.selector);
  for (const pa of model.peerAuthentications) add(pa.selector);
  for (const ra of model.requestAuthentications) add(ra.selector);
  // failoverPriority compares the caller's labels with the endpoints' (topology.* keys included:
  // harmless, they are not pod labels meshpilot reads).
  for (const c of model.clusters) for (const k of c.policy.locality?.failoverPriority ?? []) if (!k.includes('=')) keys.add(k);
  return keys;
}
