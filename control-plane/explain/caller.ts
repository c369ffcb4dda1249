// Who is calling. Explain answers for one proxy identity, the same one the control plane would
// translate for, so `--from` accepts:
//   - a node id: `sidecar~10.0.0.1~productpage-v1-abc.default~default.svc.cluster.local`
//     (namespace from the id; labels from --labels, else from the mesh endpoint at that IP);
//   - `ns/name`: the WorkloadEntry `name` in `ns`, else the first endpoint (by address) in `ns`
//     labelled `app: name` (Kubernetes' convention); its IP, labels and locality are used;
//   - nothing: --labels in --namespace (default `default`) resolved to the first endpoint there with
//     those labels (its IP and locality); without such an endpoint, or without labels, an
//     anonymous caller with no IP.
// --kind says whether the caller is an Envoy sidecar or a proxyless gRPC client; a node id of type
// `router` (`router~ip~pod.ns~ns.svc.cluster.local`) is a gateway proxy, served by its Gateways.
import { type ConfigObject, isKind } from '../config/types.ts';
import { labelsMatch, parseLocality } from '../model/services.ts';
import type { Endpoint, Locality } from '../model/types.ts';
import { proxyFromNode, type ClientKind, type Proxy } from '../translate/proxy.ts';
import type { MeshView } from './origins.ts';
import { ExplainInputError, parseLabels } from './request.ts';

export interface CallerSpec {
  from?: string;
  kind?: ClientKind;
  namespace?: string;
  labels?: Record<string, string>;
  ip?: string;
  /** `region/zone/subzone` */
  locality?: string;
}

export interface Caller {
  proxy: Proxy;
  /** How the identity was found, in words. */
  how: string;
}

interface Workload { namespace: string; endpoint: Endpoint; what: string }

function workloads(view: MeshView): Workload[] {
  const out: Workload[] = [];
  for (const s of view.model.services) for (const e of s.endpoints) out.push({ namespace: s.namespace, endpoint: e, what: `endpoint ${e.address} of ${s.host}` });
  return out;
}

export { parseLabels };

/**
 * `connected`: proxies connected to the running control plane. A `--from` naming one of them by
 * its node id takes its identity exactly as it connected (kind, namespace, labels, IP, locality).
 */
export function resolveCaller(spec: CallerSpec, view: MeshView, connected: Iterable<Proxy> = []): Caller {
  const live = spec.from ? [...connected].find((p) => p.id === spec.from!.trim()) : undefined;
  if (live) return { proxy: live, how: `the connected proxy ${live.id} (identity from its xDS node)` };
  const kind = spec.kind ?? 'envoy';
  const locality = (l: Locality) => (spec.locality !== undefined ? parseLocality(spec.locality) : l);
  const none: Locality = { region: '', zone: '', subzone: '' };
  const from = spec.from?.trim();
  if (from && from.includes('~')) {
    const base = proxyFromNode({ id: from, metadata: { ...(spec.namespace ? { NAMESPACE: spec.namespace } : {}) } });
    const ip = spec.ip ?? base.ip;
    const known = ip ? workloads(view).find((w) => w.endpoint.address === ip && w.namespace === base.namespace) : undefined;
    const labels = spec.labels ?? (known ? { ...known.endpoint.labels } : {});
    const how = spec.labels ? 'node id, labels as given' : known ? `node id; labels of the ${known.what}` : 'node id (no labels: none given and no mesh endpoint at its IP)';
    return { proxy: { ...base, kind, labels, ...(ip ? { ip } : {}), locality: locality(known?.endpoint.locality ?? none) }, how };
  }
  if (from) {
    const m = /^([^/]+)\/([^/]+)$/.exec(from);
    if (!m) throw new ExplainInputError(`from: expected a node id (sidecar~ip~pod.ns~ns.svc.cluster.local) or ns/name, got '${from}'`);
    const ns = m[1]!;
    const name = m[2]!;
    const entry = view.accepted.find((o): o is ConfigObject<'WorkloadEntry'> => isKind(o, 'WorkloadEntry') && o.namespace === ns && o.name === name);
    let found: Workload | undefined;
    let how: string;
    if (entry) {
      const spec2 = entry.spec;
      found = { namespace: ns, endpoint: { address: spec2.address ?? '', labels: { ...entry.labels, ...(spec2.labels ?? {}) }, locality: parseLocality(spec2.locality), ports: {} }, what: `WorkloadEntry ${ns}/${name}` };
      how = `WorkloadEntry ${ns}/${name} (${entry.source.file}:${entry.source.line})`;
    } else {
      const candidates = workloads(view).filter((w) => w.namespace === ns && w.endpoint.labels.app === name).sort((a, b) => a.endpoint.address.localeCompare(b.endpoint.address));
      found = candidates[0];
      if (!found) throw new ExplainInputError(`from: no workload ${ns}/${name}: no WorkloadEntry of that name and no endpoint labelled app=${name} in namespace ${ns}`);
      how = `the ${found.what} (labelled app=${name})`;
    }
    const ip = spec.ip ?? found.endpoint.address;
    const labels = { ...found.endpoint.labels, ...(spec.labels ?? {}) };
    const pod = `${name}-explain`;
    return {
      proxy: { id: `sidecar~${ip}~${pod}.${ns}~${ns}.svc.cluster.local`, kind, namespace: ns, labels, ip, locality: locality(found.endpoint.locality) },
      how,
    };
  }
  const ns = spec.namespace ?? 'default';
  if (spec.labels && Object.keys(spec.labels).length && !spec.ip) {
    // Labels alone: the first workload (by address) in the namespace that carries them gives the IP.
    const match = workloads(view)
      .filter((w) => w.namespace === ns && labelsMatch(spec.labels!, w.endpoint.labels))
      .sort((a, b) => a.endpoint.address.localeCompare(b.endpoint.address))[0];
    if (match) {
      return {
        proxy: { id: `sidecar~${match.endpoint.address}~${spec.labels.app ?? 'workload'}-explain.${ns}~${ns}.svc.cluster.local`, kind, namespace: ns, labels: { ...match.endpoint.labels, ...spec.labels }, ip: match.endpoint.address, locality: locality(match.endpoint.locality) },
        how: `the ${match.what}, the first in ${ns} with the given labels`,
      };
    }
  }
  return {
    proxy: { id: `explain~${ns}`, kind, namespace: ns, labels: spec.labels ?? {}, ...(spec.ip ? { ip: spec.ip } : {}), locality: locality(none) },
    how: `an anonymous caller in namespace ${ns}${spec.labels ? ' with the given labels' : ' with no labels'}${spec.ip ? '' : ' and no IP'}`,
  };
}
