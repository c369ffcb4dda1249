// One registered cluster: its API access and the informers meshpilot keeps on it. Every cluster
// feeds services and endpoints; the config cluster also feeds rules (our CRDs) and, optionally,
// the Secrets that register further clusters. A cluster that becomes unreachable keeps its last
// known objects (the informers' caches) until it is back or unregistered.
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1EndpointSlice,
  type V1Node,
  type V1Pod,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
import type { ClusterObjects } from './service-shards.ts';
import { RULE_RESOURCES, type RuleResource } from './rule-resources.ts';
import { ResourceWatcher, type WatcherHealth } from './watcher.ts';

export interface Gateway { address: string; port: number }

export interface ClusterRegistration {
  name: string;
  /** Network the cluster's pods are on; endpoints carry it. */
  network?: string;
  /** Where callers on other networks reach this cluster's pods (e.g. east-west gateway, NodeIP:NodePort). */
  gateway?: Gateway;
  kubeConfig: KubeConfig;
  /** Where the registration came from (`--kubeconfig`, `--cluster`, `Secret ns/name`). */
  origin: string;
}

export interface ClusterHealth {
  name: string;
  network?: string;
  origin: string;
  synced: boolean;
  healthy: boolean;
  reason?: string;
  lastErrorAt?: string;
  /** Per watched resource. */
  resources: Record<string, WatcherHealth>;
}

export interface ClusterOptions {
  /** Watch our rule CRDs here (the config cluster). */
  rules: boolean;
  /** Watch cluster-registration Secrets in this namespace (the config cluster). */
  secretsNamespace?: string;
  secretLabel: string;
  onChange: () => void;
  onHealth: (c: KubeCluster) => void;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export class KubeCluster {
  readonly services: ResourceWatcher<V1Service>;
  readonly endpointSlices: ResourceWatcher<V1EndpointSlice>;
  readonly pods: ResourceWatcher<V1Pod>;
  readonly nodes: ResourceWatcher<V1Node>;
  readonly rules = new Map<RuleResource, ResourceWatcher<KubernetesObject>>();
  readonly secrets: ResourceWatcher<V1Secret> | undefined;
  readonly custom: CustomObjectsApi;
  private readonly all = new Map<string, ResourceWatcher<KubernetesObject>>();

  constructor(readonly reg: ClusterRegistration, opts: ClusterOptions) {
    const kc = reg.kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    const make = <T extends KubernetesObject>(id: string, path: string, list: () => Promise<KubernetesListObject<T>>, labelSelector?: string) => {
      const w = new ResourceWatcher<T>({
        kubeConfig: kc,
        path,
        list,
        ...(labelSelector ? { labelSelector } : {}),
        onChange: opts.onChange,
        onHealth: () => opts.onHealth(this),
        ...(opts.backoffMinMs !== undefined ? { backoffMinMs: opts.backoffMinMs } : {}),
        ...(opts.backoffMaxMs !== undefined ? { backoffMaxMs: opts.backoffMaxMs } : {}),
        watchTimeoutSeconds: 300,
      });
      this.all.set(id, w as unknown as ResourceWatcher<KubernetesObject>);
      return w;
    };
    this.services = make('services', '/api/v1/services', () => core.listServiceForAllNamespaces());
    this.endpointSlices = make('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces());
    this.pods = make('pods', '/api/v1/pods', () => core.listPodForAllNamespaces());
    this.nodes = make('nodes', '/api/v1/nodes', () => core.listNode());
    if (opts.rules) {
      for (const r of RULE_RESOURCES) {
        const list = () => this.custom.listClusterCustomObject({ group: r.group, version: r.version, plural: r.plural }) as Promise<KubernetesListObject<KubernetesObject>>;
        this.rules.set(r, make(r.plural, `/apis/${r.group}/${r.version}/${r.plural}`, list));
      }
    }
    if (opts.secretsNamespace) {
      const ns = opts.secretsNamespace;
      this.secrets = make('secrets', `/api/v1/namespaces/${ns}/secrets`, () => core.listNamespacedSecret({ namespace: ns, labelSelector: opts.secretLabel }), opts.secretLabel);
    }
  }

  get name(): string {
    return this.reg.name;
  }

  start(): void {
    for (const w of this.all.values()) w.start();
  }

  stop(): void {
    for (const w of this.all.values()) w.stop();
  }

  objects(): ClusterObjects {
    return { services: this.services.list(), endpointSlices: this.endpointSlices.list(), pods: this.pods.list(), nodes: this.nodes.list() };
  }

  health(): ClusterHealth {
    const resources = Object.fromEntries([...this.all].map(([id, w]) => [id, w.status()]));
    const list = Object.entries(resources);
    const bad = list.find(([, h]) => !h.healthy);
    const lastErrorAt = list.map(([, h]) => h.lastErrorAt).filter((t): t is string => !!t).sort().pop();
    return {
      name: this.name,
      ...(this.reg.network ? { network: this.reg.network } : {}),
      origin: this.reg.origin,
      synced: list.every(([, h]) => h.synced),
      healthy: !bad,
      ...(bad ? { reason: `${bad[0]}: ${bad[1].reason ?? 'not connected yet'}` } : {}),
      ...(lastErrorAt ? { lastErrorAt } : {}),
      resources,
    };
  }
}
