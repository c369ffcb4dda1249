// Edits the benchmark's lower-bound servers make to meshpilot's translate output (proto3 JSON), to
// stand for the rule and endpoint changes the runner makes to the YAML files meshpilot reads.
import type { ResourceJson } from '../control-plane/envoy/check.ts';

/** Sets the weights of every weighted cluster in a resource by subset (v1 gets w1, v2 gets 100 - w1). */
export function setWeights(o: unknown, w1: number): void {
  if (Array.isArray(o)) for (const x of o) setWeights(x, w1);
  else if (o && typeof o === 'object') {
    const rec = o as Record<string, unknown>;
    if (typeof rec.name === 'string' && 'weight' in rec) rec.weight = rec.name.includes('|v1|') ? w1 : 100 - w1;
    for (const v of Object.values(rec)) setWeights(v, w1);
  }
}

/** Sets every endpoint port in a resource (a ClusterLoadAssignment). */
export function setPorts(o: unknown, port: number): void {
  if (Array.isArray(o)) for (const x of o) setPorts(x, port);
  else if (o && typeof o === 'object') {
    const rec = o as Record<string, unknown>;
    if ('port_value' in rec) rec.port_value = port;
    for (const v of Object.values(rec)) setPorts(v, port);
  }
}

/**
 * A sidecar's route config (one per port) holds one virtual host per service: sets the weights in
 * the one named `vhost` (`host:port`). Returns whether the route config has it.
 */
export function setVhostWeights(routeConfig: ResourceJson, vhost: string, w1: number): boolean {
  const hosts = (routeConfig as { virtual_hosts?: Array<{ name?: string }> }).virtual_hosts ?? [];
  const h = hosts.find((v) => v.name === vhost);
  if (h) setWeights(h, w1);
  return !!h;
}

/** Whether a cluster or ClusterLoadAssignment name is one of `host`'s (any port, any subset). */
export function isClusterOf(name: string, host: string): boolean {
  return name.startsWith('outbound|') && name.endsWith(`|${host}`);
}
