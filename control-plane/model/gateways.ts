// Gateways and the VirtualServices bound to them. A Gateway says which ports, hosts and
// certificates a gateway proxy (router node) serves; a VirtualService whose `gateways` names it
// gives the routes. Istio's semantics: no `gateways` = mesh only (routes.ts); a listed gateway that
// does not exist is accepted with a warning (it may come later); a match's `gateways` narrows the
// rule's own for that match.
import { type ConfigObject, ofKind } from '../config/types.ts';
import { gatewayProtocol } from '../config/schemas/gateway.ts';
import { MESH_GATEWAY } from '../config/schemas/virtual-service.ts';
import { compareText } from './compare.ts';
import { resolveGatewayName } from './gateway-names.ts';
import { resolveHost } from './hosts.ts';
import { type IssueList, originOf } from './issues.ts';
import { asRootRoute, delegatedContext, expandDelegates, resolveRoute, type RouteInputs } from './routes.ts';
import { destinations as l4Destinations, routeOrigin } from './l4-routes.ts';
import type { Gateway, GatewayL4Route, GatewayServer, GatewayVirtualService } from './types.ts';

/** No destination port can equal it: a multi-port destination must name its port at a gateway. */
const NO_TABLE_PORT = -2;

export function buildGateways(objects: readonly ConfigObject[], issues: IssueList): Gateway[] {
  const out: Gateway[] = [];
  for (const obj of ofKind([...objects], 'Gateway')) {
    if (issues.rejected.has(obj.key)) continue;
    const servers = obj.spec.servers.map((s, i): GatewayServer => {
      const tls = s.tls;
      return {
        port: s.port.number,
        portName: s.port.name,
        protocol: gatewayProtocol(s.port.protocol) ?? s.port.protocol.toUpperCase(),
        hosts: s.hosts.map((h) => {
          const slash = h.indexOf('/');
          const ns = slash < 0 ? '*' : h.slice(0, slash);
          return { namespace: ns === '.' ? obj.namespace : ns, host: (slash < 0 ? h : h.slice(slash + 1)).toLowerCase() };
        }),
        ...(s.bind ? { bind: s.bind } : {}),
        ...(s.name ? { name: s.name } : {}),
        ...(tls
          ? {
              tls: {
                httpsRedirect: tls.httpsRedirect === true,
                mode: tls.mode ?? 'PASSTHROUGH',
                ...(tls.credentialName ? { credentialName: tls.credentialName } : {}),
                ...(tls.serverCertificate ? { serverCertificate: tls.serverCertificate } : {}),
                ...(tls.privateKey ? { privateKey: tls.privateKey } : {}),
                ...(tls.caCertificates ? { caCertificates: tls.caCertificates } : {}),
                subjectAltNames: [...(tls.subjectAltNames ?? [])],
                ...(tls.minProtocolVersion ? { minProtocolVersion: tls.minProtocolVersion } : {}),
                ...(tls.maxProtocolVersion ? { maxProtocolVersion: tls.maxProtocolVersion } : {}),
                cipherSuites: [...(tls.cipherSuites ?? [])],
              },
            }
          : {}),
        at: originOf(obj, ['spec', 'servers', i]).at,
      };
    });
    out.push({ key: `${obj.namespace}/${obj.name}`, namespace: obj.namespace, name: obj.name, selector: { ...(obj.spec.selector ?? {}) }, servers, origin: originOf(obj) });
  }
  return out.sort((a, b) => compareText(a.key, b.key));
}

/** How a server is served (translate/gateway.ts, gateway-l4.ts). */
export type ServerKind = 'http' | 'https' | 'tls-terminate' | 'passthrough' | 'auto-passthrough' | 'tcp';

/** Istio's reading: the TLS mode decides for HTTPS/TLS (passthrough: tls routes by SNI; terminated
 * TLS: http routes for HTTPS, tcp routes for TLS); other non-HTTP protocols take tcp routes. */
export function serverKind(s: GatewayServer): ServerKind {
  const mode = s.tls?.mode;
  if (s.protocol === 'HTTPS' || s.protocol === 'TLS') {
    if (mode === 'AUTO_PASSTHROUGH') return 'auto-passthrough';
    if (mode === undefined || mode === 'PASSTHROUGH') return 'passthrough';
    return s.protocol === 'HTTPS' ? 'https' : 'tls-terminate';
  }
  if (s.protocol === 'TCP' || s.protocol === 'MONGO' || s.protocol === 'REDIS' || s.protocol === 'MYSQL') return 'tcp';
  return 'http';
}

/** Does a server host (`*`, `*.suffix`, a name) take this name (which may be a wildcard itself)? */
function hostOverlaps(server: string, name: string): boolean {
  if (server === '*' || name === '*' || server === name) return true;
  const covers = (wild: string, n: string) => wild.startsWith('*.') && n.endsWith(wild.slice(1));
  return covers(server, name) || covers(name, server);
}

/**
 * A tls match's sniHosts must fall within the hosts of a PASSTHROUGH server of the gateways it is
 * bound to (Istio keeps only the SNI names the server's hosts take): one that no such server takes
 * never applies there, which is worth a warning (the rule itself stays, as in Istio).
 */
function warnSniOutsideServers(obj: ConfigObject, l4: readonly GatewayL4Route[], bound: readonly string[], gateways: readonly Gateway[], issues: RouteInputs['issues']): void {
  for (const r of l4) {
    if (r.kind !== 'tls') continue;
    r.scopes.forEach((s, mi) => {
      const servers = gateways.filter((g) => (s.gateways ?? bound).includes(g.key)).flatMap((g) => g.servers).filter((x) => serverKind(x) === 'passthrough' && (s.port === undefined || s.port === x.port));
      if (!servers.length) return;
      (s.sniHosts ?? []).forEach((sni, si) => {
        if (servers.some((x) => x.hosts.some((h) => hostOverlaps(h.host, sni)))) return;
        issues.warn(obj, ['spec', 'tls', r.index, 'match', mi, 'sniHosts', si], `${sni} is not within the hosts of any PASSTHROUGH server of the gateways this match is bound to: it never applies there`);
      });
    });
  }
}

/** The VirtualServices bound to gateways, with their routes resolved once (gateway server ports
 * do not pick destination ports: a destination with several ports must name one). */
export function buildGatewayVirtualServices(objects: readonly ConfigObject[], inputs: RouteInputs, gateways: readonly Gateway[]): GatewayVirtualService[] {
  const known = new Set(gateways.map((g) => g.key));
  const out: GatewayVirtualService[] = [];
  const vss = new Map(ofKind([...objects], 'VirtualService').map((v) => [v.key, v]));
  for (const obj of ofKind([...objects], 'VirtualService').sort((a, b) => compareText(a.key, b.key))) {
    const spec = obj.spec;
    const named = (spec.gateways ?? []).map((g) => resolveGatewayName(g, obj.namespace));
    const bound = named.filter((g) => g !== MESH_GATEWAY);
    // A VirtualService without hosts is a delegate: it routes nothing by itself (routes.ts warns).
    const hosts = spec.hosts;
    if (bound.length === 0 || !hosts) continue;
    named.forEach((g, i) => {
      if (g !== MESH_GATEWAY && !known.has(g)) inputs.issues.warn(obj, ['spec', 'gateways', i], `Gateway ${g} does not exist (yet): nothing serves this rule there until it does`);
    });
    const ctx = {
      service: (host: string) => inputs.services.get(host),
      hasSubset: (host: string, subset: string) => inputs.rules.get(host)?.spec.subsets?.some((s) => s.name === subset) ?? false,
      target: () => {},
      issues: inputs.issues,
    };
    const routes: GatewayVirtualService['routes'] = [];
    // Delegates expand as for the mesh (routes.ts); their warnings were given there already.
    const quiet = { ...ctx, issues: { error: ctx.issues.error.bind(ctx.issues), warn: () => {} } };
    const entries = expandDelegates(obj, quiet, (k) => {
      const d = vss.get(k);
      return d ? { obj: d, rejected: inputs.issues.rejected.has(k) } : { rejected: inputs.issues.rejected.has(k) };
    });
    entries.forEach((e) => {
      const http = e.http;
      const i = e.rootIndex;
      const scopes = (http.match ?? []).map((m, mi) => {
        const gws = m.gateways?.map((g) => resolveGatewayName(g, obj.namespace));
        gws?.forEach((g, gi) => {
          if (g === MESH_GATEWAY && !named.includes(MESH_GATEWAY)) inputs.issues.warn(obj, ['spec', 'http', i, 'match', mi, 'gateways', gi], 'the rule is not bound to mesh (spec.gateways): this match never applies to sidecars');
          else if (g !== MESH_GATEWAY && !bound.includes(g)) inputs.issues.warn(obj, ['spec', 'http', i, 'match', mi, 'gateways', gi], `the rule is not bound to ${g} (spec.gateways): this match never applies there`);
        });
        return { ...(gws ? { gateways: gws } : {}), ...(m.port !== undefined ? { port: m.port } : {}) };
      });
      // A route whose every match is for other gateways (or mesh only) has nothing to do here.
      if (scopes.length && scopes.every((s) => s.gateways && !s.gateways.some((g) => bound.includes(g)))) return;
      // Sidecars pick a multi-port destination's port by the service port called; a gateway has
      // none to pick by. For a rule the sidecars use too, that leaves the route out at gateways
      // (a warning) rather than refusing what works for the mesh.
      const ambiguous = (http.route ?? []).findIndex((d) => d.destination.port === undefined && (inputs.services.get(resolveHost(d.destination.host, e.src.namespace))?.ports.length ?? 0) > 1);
      if (ambiguous >= 0 && named.includes(MESH_GATEWAY)) {
        inputs.issues.warn(obj, ['spec', 'http', i, 'route', ambiguous, 'destination'], 'the destination has several ports and names none: this route is left out at gateways (sidecars use the port they call); name one with destination.port.number');
        return;
      }
      const route = e.src === obj ? resolveRoute(obj, http, i, NO_TABLE_PORT, ctx) : resolveRoute(e.src, http, e.index, NO_TABLE_PORT, delegatedContext(obj, e, ctx));
      if (route) routes.push({ route: asRootRoute(obj, e, route), scopes, http: i });
    });
    const l4: GatewayL4Route[] = [];
    for (const kind of ['tls', 'tcp'] as const) {
      (spec[kind] ?? []).forEach((r, i) => {
        const scopes = (r.match ?? []).map((m) => {
          const sni = 'sniHosts' in m ? (m.sniHosts as string[] | undefined) : undefined;
          return { ...(m.gateways ? { gateways: m.gateways.map((g) => resolveGatewayName(g, obj.namespace)) } : {}), ...(m.port !== undefined ? { port: m.port } : {}), ...(sni ? { sniHosts: sni.map((h) => h.toLowerCase()) } : {}) };
        });
        if (scopes.length && scopes.every((s) => s.gateways && !s.gateways.some((g) => bound.includes(g)))) return;
        // As for http above: a multi-port destination without a port is left out at gateways when sidecars use the rule.
        const ambiguous = (r.route ?? []).findIndex((d) => d.destination.port === undefined && (inputs.services.get(resolveHost(d.destination.host, obj.namespace))?.ports.length ?? 0) > 1);
        if (ambiguous >= 0 && named.includes(MESH_GATEWAY)) {
          inputs.issues.warn(obj, ['spec', kind, i, 'route', ambiguous, 'destination'], 'the destination has several ports and names none: this route is left out at gateways (sidecars use the port they call); name one with destination.port.number');
          return;
        }
        const dests = l4Destinations(obj, r.route ?? [], ['spec', kind, i], NO_TABLE_PORT, ctx, inputs.clusters);
        if (dests) l4.push({ kind, index: i, scopes, destinations: dests, origin: routeOrigin(obj, ['spec', kind, i]) });
      });
    }
    if (inputs.issues.rejected.has(obj.key)) continue;
    const hostNames = hosts.map((h) => resolveHost(h, obj.namespace).toLowerCase());
    warnSniOutsideServers(obj, l4, bound, gateways, inputs.issues);
    out.push({ key: `${obj.namespace}/${obj.name}`, namespace: obj.namespace, hosts: hostNames, gateways: [...new Set(bound)], routes, l4, origin: originOf(obj) });
  }
  return out;
}
