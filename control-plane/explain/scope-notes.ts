// Why a sidecar has no config for a destination, and what it does with traffic it has no service
// for: the Sidecar in force (egress hosts, outboundTrafficPolicy) or the mesh setting, and exportTo.
import { exportedTo } from '../model/export-to.ts';
import type { Model } from '../model/types.ts';
import type { Proxy } from '../translate/proxy.ts';
import { proxyScope, seesHost, seesPort } from '../translate/scope.ts';

/** `outbound traffic policy REGISTRY_ONLY (Sidecar default/x)` and the like. */
export function policyText(model: Model, proxy: Proxy): string {
  const s = proxyScope(model, proxy);
  const from = s.modeFrom === 'mesh' ? 'the mesh settings (outboundTrafficPolicy)' : s.modeFrom === 'default' ? "the default: no Sidecar or mesh setting says otherwise" : `${s.modeFrom.replace(/^Sidecar\//, 'Sidecar ')}`;
  return `outbound traffic policy ${s.mode}, from ${from}`;
}

export function isBlocked(model: Model, proxy: Proxy): boolean {
  return proxyScope(model, proxy).mode === 'REGISTRY_ONLY';
}

/** When `host` names a service of the mesh this proxy does not see (on `port`), why. */
export function outOfScopeNote(model: Model, proxy: Proxy, host: string, port: number): string | undefined {
  const svc = model.services.find((s) => s.host === host || s.host.startsWith(`${host}.`));
  if (!svc) return undefined;
  const scope = proxyScope(model, proxy);
  if (seesPort(scope, svc.host, port)) return undefined;
  if (!exportedTo(svc.exportTo, proxy.namespace)) return `${svc.host} is a service of the mesh, but its exportTo (${(svc.exportTo ?? []).join(', ') || 'none'}) does not include namespace ${proxy.namespace} (${svc.origin.key}): this proxy has no config for it`;
  const sidecar = scope.sidecar ? `Sidecar ${scope.sidecar.key.replace(/^Sidecar\//, '')} (${scope.sidecar.origin.at})` : 'no Sidecar';
  if (!seesHost(scope, svc.host)) return `${svc.host} is a service of the mesh, but ${sidecar} does not name it in its egress hosts: this proxy has no config for it`;
  return `${svc.host} is seen by this proxy, but ${sidecar} names it only on other egress ports than ${port}`;
}
