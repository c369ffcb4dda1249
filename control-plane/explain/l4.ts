// explain for a TCP or TLS connection (`tcp://host:port`, `tls://sni-host:port`): the outbound
// listener for the port, then the filter chain Envoy picks for the destination address and SNI
// (most specific address, then exact SNI, then the longest wildcard), then its tcp_proxy.
import { isIP } from 'node:net';
import { resolveHost } from '../model/hosts.ts';
import { cidrRange } from '../translate/listeners-tcp.ts';
import { LISTENER } from '../translate/type-urls.ts';
import type { Resources } from '../translate/translate.ts';
import type { Proxy } from '../translate/proxy.ts';
import type { Json } from '../json.ts';
import { destinationsFor } from './destinations.ts';
import { chainTlsNote, gatewayListener } from './gateway.ts';
import type { MeshView, RuleIndex, RuleRef } from './origins.ts';
import type { HttpRequest } from './request.ts';
import { percentText } from './route-match.ts';
import type { Explanation, RouteStep } from './types.ts';

export const L4_SCHEMES = new Set(['tcp', 'tls']);

interface Target { ip?: string; sni?: string }

/** The prefix length of the longest range holding `ip`, or -1 (IPv4 compared; IPv6 only exactly). */
function longestPrefix(ranges: Json[], ip: string | undefined): number {
  if (!ip) return -1;
  let best = -1;
  for (const r of ranges) {
    const len = Number(r.prefix_len ?? 0);
    const prefix = String(r.address_prefix);
    const holds = isIP(ip) === 4 && isIP(prefix) === 4 ? cidrRange(`${ip}/${len}`).address_prefix === cidrRange(`${prefix}/${len}`).address_prefix : ip === prefix;
    if (holds) best = Math.max(best, len);
  }
  return best;
}

/** How well a chain's server_names take `sni`: exact 1000, wildcard by its length, none -1 (no list: 0). */
function sniScore(names: string[] | undefined, sni: string | undefined): number {
  if (!names?.length) return 0;
  if (!sni) return -1;
  const s = sni.toLowerCase();
  let best = -1;
  for (const n of names) {
    if (n === s) return 1000;
    if (n.startsWith('*.') && s.endsWith(n.slice(1))) best = Math.max(best, n.length);
  }
  return best;
}

function describeChain(fcm: Json | undefined): string {
  const parts: string[] = [];
  const ranges = (fcm?.prefix_ranges as Json[] | undefined) ?? [];
  if (ranges.length) parts.push(`destination in ${ranges.map((r) => `${String(r.address_prefix)}/${String(r.prefix_len)}`).join(', ')}`);
  const names = fcm?.server_names as string[] | undefined;
  if (names?.length) parts.push(`SNI ${names.join(', ')}`);
  return parts.join(' and ') || 'any connection';
}

/** The rule behind a chain (named `host:port/<ns>/<name>/<tcp|tls>/<i>` or for the service's own route). */
function chainRule(view: MeshView, chainName: string): RuleRef | undefined {
  // A gateway's chain: `<server port>/<ns>/<name>/<tcp|tls>/<i>` (translate/gateway-l4.ts).
  const g = /^(\d+)\/([^/]+)\/([^/]+)\/(tcp|tls)\/(\d+)/.exec(chainName);
  if (g) {
    const vs = view.model.gatewayVirtualServices.find((v) => v.key === `${g[2]}/${g[3]}`);
    const r = vs?.l4.find((x) => x.kind === g[4] && x.index === Number(g[5]));
    return r ? { key: r.origin.key, at: r.origin.at, path: `spec.${g[4]}[${g[5]}]` } : undefined;
  }
  const m = /^([^/]+):(\d+)\/([^/]+)\/([^/]+)\/(tcp|tls)\/(\d+)/.exec(chainName);
  if (!m) return undefined;
  const table = view.model.l4Tables.find((t) => t.host === m[1] && t.port === Number(m[2]));
  const route = table?.routes.find((r) => r.name === `${m[3]}/${m[4]}/${m[5]}/${m[6]}`);
  return route ? { key: route.origin.key, at: route.origin.at, path: `spec.${m[5]}[${m[6]}]` } : undefined;
}

/** The destination address explain assumes: the host when it is an IP, else its service's first VIP. */
function targetOf(view: MeshView, req: HttpRequest, scheme: string, namespace: string): Target {
  const host = resolveHost(req.host, namespace);
  const ip = isIP(req.host) ? req.host : view.model.services.find((s) => s.host === host)?.addresses?.find((a) => !a.includes('/'));
  return { ...(ip ? { ip } : {}), ...(scheme === 'tls' && !isIP(req.host) ? { sni: req.host } : {}) };
}

export function explainL4(view: MeshView, index: RuleIndex, res: Resources, proxy: Proxy, req: HttpRequest, out: Explanation): Explanation {
  if (proxy.kind === 'grpc') {
    out.outcome = { kind: 'no listener', summary: 'proxyless gRPC clients make gRPC calls only: they have no TCP/TLS routing (tcp and tls routes apply to Envoy sidecars)' };
    return out;
  }
  const scheme = req.scheme;
  // A gateway is connected to at its own address: only the port and the SNI choose (gateway-l4.ts).
  const target = proxy.router ? (scheme === 'tls' ? { sni: req.host } : {}) : targetOf(view, req, scheme, proxy.namespace);
  out.request = { method: scheme.toUpperCase(), authority: `${req.host}:${req.port}`, path: '', headers: {} };
  if (!target.ip && !proxy.router) out.notes.push(`"${req.host}" has no virtual IP in the mesh: explain assumes an address no VIP or destinationSubnets range holds`);
  const listener = proxy.router
    ? gatewayListener(res[LISTENER] as Json[], req.port)
    : (res[LISTENER] as Json[]).find((l) => l.name !== 'virtualOutbound' && l.traffic_direction === 'OUTBOUND' && ((l.address as Json)?.socket_address as Json)?.port_value === req.port);
  if (!listener && proxy.router) {
    out.outcome = { kind: 'no listener', summary: `no Gateway server of this gateway serves port ${req.port} with a rule (a TCP/TLS server without a bound tcp/tls route gets no listener): the connection is refused` };
    return out;
  }
  if (!listener) {
    out.outcome = { kind: 'passthrough', summary: `no listener for port ${req.port}: virtualOutbound passes the connection through (PassthroughCluster) to the address the caller connected to; no routing rule applies` };
    return out;
  }
  out.listener = String(listener.name);
  const chains = (listener.filter_chains as Json[] | undefined) ?? [];
  // Envoy narrows by destination address first (longest prefix, chains without ranges last), then SNI.
  const scored = chains.map((c) => {
    const fcm = c.filter_chain_match as Json | undefined;
    const ranges = (fcm?.prefix_ranges as Json[] | undefined) ?? [];
    return { c, addr: ranges.length ? longestPrefix(ranges, target.ip) : -0.5, sni: sniScore(fcm?.server_names as string[] | undefined, target.sni) };
  });
  const bestAddr = Math.max(...scored.filter((s) => s.addr !== -1).map((s) => s.addr));
  const byAddr = scored.filter((s) => s.addr === bestAddr);
  const bestSni = Math.max(-1, ...byAddr.map((s) => s.sni));
  const chosen = bestSni >= 0 ? byAddr.find((s) => s.sni === bestSni) : undefined;
  chains.forEach((c, i) => {
    const s = scored[i]!;
    const rule = chainRule(view, String(c.name));
    const step: RouteStep = { index: i, name: String(c.name ?? ''), match: describeChain(c.filter_chain_match as Json | undefined), result: s === chosen ? 'matched' : 'no match', ...(rule ? { rule } : {}) };
    if (s !== chosen) step.reason = s.addr === -1 ? `the destination ${target.ip ?? '(no VIP)'} is not in its ranges` : s.addr !== bestAddr ? 'a chain with a more specific destination range takes the connection' : s.sni < 0 ? `the SNI ${target.sni ?? '(none)'} is not among its server names` : 'a chain with a more specific server name takes the connection';
    out.routes.push(step);
  });
  if (!chosen) {
    out.outcome = { kind: 'no route', summary: `no filter chain of listener ${out.listener} takes this connection: Envoy closes it` };
    return out;
  }
  out.route = out.routes[chains.indexOf(chosen.c)];
  const filters = (chosen.c.filters as Json[] | undefined) ?? [];
  const tcp = filters.find((f) => f.name === 'envoy.filters.network.tcp_proxy')?.typed_config as Json | undefined;
  if (!tcp) {
    out.outcome = { kind: 'passthrough', summary: `port ${req.port} is an HTTP port for this address: ask with an http:// request` };
    return out;
  }
  const weighted = (tcp.weighted_clusters as Json | undefined)?.clusters as Json[] | undefined;
  let targets = weighted ? weighted.map((w) => ({ name: String(w.name), weight: Number(w.weight ?? 0) })) : [{ name: String(tcp.cluster), weight: 1 }];
  const tlsNote = proxy.router ? chainTlsNote(chosen.c) : undefined;
  if (tlsNote) out.notes.push(tlsNote);
  // AUTO_PASSTHROUGH: the SNI-DNAT cluster is the mesh cluster's copy (same endpoints, no TLS of its own).
  const dnat = /^outbound_\.(\d+)_\.([^_]*)_\.(.+)$/;
  if (proxy.router && targets.some((t) => dnat.test(t.name))) {
    out.notes.push('AUTO_PASSTHROUGH: the SNI names the cluster; the gateway forwards the client\'s own TLS (mesh mTLS) unopened to its endpoints');
    targets = targets.map((t) => ({ ...t, name: t.name.replace(dnat, 'outbound|$1|$2|$3') }));
  }
  if (targets.length === 1 && targets[0]!.name === 'PassthroughCluster') {
    out.outcome = { kind: 'passthrough', summary: 'no service of the mesh takes this address on this port: the connection goes out as it came (PassthroughCluster)' };
    return out;
  }
  const found = destinationsFor({ view, index, res, proxy, targets, upstream: req, calleeKind: proxy.kind });
  out.destinations.push(...found.destinations);
  out.notes.push(...found.notes);
  out.outcome = { kind: 'forward', summary: `connection forwarded to ${out.destinations.map((d) => `${d.subset ? `${d.host} subset ${d.subset}` : (d.host ?? d.cluster)} ${percentText(d.share)}`).join(', ')} (per connection)` };
  return out;
}
