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
import { resolveRoute, type RouteInputs } from './routes.ts';
import type { Gateway, GatewayServer, GatewayVirtualService } from './types.ts';

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
    for (const [i, s] of servers.entries()) {
      const reason = unservedReason(s);
      if (reason) issues.warn(obj, ['spec', 'servers', i, 'port'], `${reason}: meshpilot does not serve this server yet (no listener is made for it)`);
    }
    out.push({ key: `${obj.namespace}/${obj.name}`, namespace: obj.namespace, name: obj.name, selector: { ...(obj.spec.selector ?? {}) }, servers, origin: originOf(obj) });
  }
  return out.sort((a, b) => compareText(a.key, b.key));
}

/** Why a server gets no listener (undefined: it gets one). TCP-level routing (VirtualService `tcp`/`tls`) is not built yet. */
export function unservedReason(s: GatewayServer): string | undefined {
  const mode = s.tls?.mode;
  if (s.protocol === 'HTTPS' && (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH')) return `an HTTPS server with tls.mode ${mode} needs VirtualService tls routes`;
  if (s.protocol === 'TLS' && (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH')) return `a TLS server with tls.mode ${mode} needs VirtualService tls routes`;
  if (s.protocol === 'TLS' || s.protocol === 'TCP' || s.protocol === 'MONGO' || s.protocol === 'REDIS' || s.protocol === 'MYSQL') return `a ${s.protocol} server needs VirtualService tcp routes`;
  return undefined;
}

/** The VirtualServices bound to gateways, with their routes resolved once (gateway server ports
 * do not pick destination ports: a destination with several ports must name one). */
export function buildGatewayVirtualServices(objects: readonly ConfigObject[], inputs: RouteInputs, gateways: readonly Gateway[]): GatewayVirtualService[] {
  const known = new Set(gateways.map((g) => g.key));
  const out: GatewayVirtualService[] = [];
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
    (spec.http ?? []).forEach((http, i) => {
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
      const ambiguous = (http.route ?? []).findIndex((d) => d.destination.port === undefined && (inputs.services.get(resolveHost(d.destination.host, obj.namespace))?.ports.length ?? 0) > 1);
      if (ambiguous >= 0 && named.includes(MESH_GATEWAY)) {
        inputs.issues.warn(obj, ['spec', 'http', i, 'route', ambiguous, 'destination'], 'the destination has several ports and names none: this route is left out at gateways (sidecars use the port they call); name one with destination.port.number');
        return;
      }
      const route = resolveRoute(obj, http, i, NO_TABLE_PORT, ctx);
      if (route) routes.push({ route, scopes, http: i });
    });
    if (inputs.issues.rejected.has(obj.key)) continue;
    out.push({ key: `${obj.namespace}/${obj.name}`, namespace: obj.namespace, hosts: hosts.map((h) => resolveHost(h, obj.namespace).toLowerCase()), gateways: [...new Set(bound)], routes, origin: originOf(obj) });
  }
  return out;
}
