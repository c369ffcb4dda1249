// Which proxies share config: a proxy's group key (translate/proxy.ts `proxyGroupKey`) depends on
// the model through three things, kept here and updated per model: the endpoint addresses (a proxy
// at one has an inbound side), the label keys rules select on, and whether some cluster's endpoints
// differ by locality or network. Keys are memoized per proxy until one of the three changes.
import { labelKeysUsed } from '../model/label-keys.ts';
import { endpointsOnlySince } from '../model/endpoint-update.ts';
import type { Model, Service, UpstreamCluster } from '../model/types.ts';
import { clusterTopology } from '../translate/locality-priority.ts';
import { proxyGroupKey, type Proxy, type TopologyUse } from '../translate/proxy.ts';

/**
 * Every endpoint address of the model's services, kept up to date from the services that changed
 * (the model keeps unchanged services as the same objects) instead of rebuilt from every endpoint.
 */
export class EndpointIps {
  private services = new Set<Service>();
  private count = new Map<string, number>();

  has(ip: string): boolean {
    return this.count.has(ip);
  }

  /** Returns whether an address appeared or disappeared. */
  update(services: readonly Service[]): boolean {
    const next = new Set(services);
    const touched = new Map<string, boolean>(); // address -> whether it was there before
    const add = (s: Service, by: number) => {
      for (const e of s.endpoints) {
        const before = this.count.get(e.address) ?? 0;
        if (!touched.has(e.address)) touched.set(e.address, before > 0);
        if (before + by === 0) this.count.delete(e.address);
        else this.count.set(e.address, before + by);
      }
    };
    for (const s of next) if (!this.services.has(s)) add(s, 1);
    for (const s of this.services) if (!next.has(s)) add(s, -1);
    this.services = next;
    for (const [address, was] of touched) if (this.count.has(address) !== was) return true;
    return false;
  }
}

function sameSet<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

export class ProxyGroups {
  /** Every endpoint address in the model: a proxy at one of them has an inbound side. */
  private endpointIps = new EndpointIps();
  private labelKeys = new Set<string>();
  private ipInConfig = false;
  private topology: TopologyUse = { locality: false, network: false };
  /** Each proxy's group key, until what keys depend on changes (`keyEpoch`): pushes ask per type. */
  private groupKeys = new WeakMap<Proxy, { epoch: number; key: string }>();
  private keyEpoch = 0;

  /** How many clusters make a caller's locality (network) matter, for the last model. */
  private byLocality = 0;
  private byNetwork = 0;
  private lastModel: Model | undefined;

  /** The model's topology use: from the previous model's counts and the changed clusters after an endpoint update. */
  private topologyOf(model: Model): TopologyUse {
    const add = (c: UpstreamCluster, by: number) => {
      const t = clusterTopology(c);
      if (t.locality) this.byLocality += by;
      if (t.network) this.byNetwork += by;
    };
    const prev = this.lastModel;
    if (prev && endpointsOnlySince(model) === prev) {
      for (let i = 0; i < model.clusters.length; i++) {
        if (model.clusters[i] === prev.clusters[i]) continue;
        add(prev.clusters[i]!, -1);
        add(model.clusters[i]!, 1);
      }
    } else {
      this.byLocality = this.byNetwork = 0;
      for (const c of model.clusters) add(c, 1);
    }
    this.lastModel = model;
    return { locality: this.byLocality > 0, network: this.byNetwork > 0 };
  }

  /** Takes what group keys depend on from a new model; keys given before a change are recomputed. */
  update(model: Model): void {
    const ipsChanged = this.endpointIps.update(model.services);
    // Label keys come from rules, never from endpoints.
    const labelKeys = endpointsOnlySince(model) === this.lastModel && this.lastModel ? this.labelKeys : labelKeysUsed(model);
    const topology = this.topologyOf(model);
    // A Sidecar ingress to `0.0.0.0:PORT` means the proxy's own IP: every IP is then its own group.
    const ipInConfig = model.sidecars.some((s) => s.ingress.some((l) => l.defaultEndpoint?.startsWith('0.0.0.0:')));
    if (ipsChanged || ipInConfig !== this.ipInConfig || !sameSet(labelKeys, this.labelKeys) || topology.locality !== this.topology.locality || topology.network !== this.topology.network) this.keyEpoch++;
    this.ipInConfig = ipInConfig;
    this.labelKeys = labelKeys;
    this.topology = topology;
  }

  groupOf(proxy: Proxy): string {
    const memo = this.groupKeys.get(proxy);
    if (memo && memo.epoch === this.keyEpoch) return memo.key;
    const key = proxyGroupKey(proxy, proxy.ip !== undefined && (this.ipInConfig || this.endpointIps.has(proxy.ip)), this.labelKeys, this.topology);
    this.groupKeys.set(proxy, { epoch: this.keyEpoch, key });
    return key;
  }
}
