// VirtualService `tcp` and `tls` routes (L4): connections are routed by destination address, port,
// SNI and source, never by request content. Istio's validation rules are kept, with its wording
// where users search for it.
import { z } from 'zod';
import { cidrProblem } from './authorization-policy.ts';
import { checkHost, dnsLabel, intRange, isIpLiteral, isRecord, labels, portNumber, withRule, type Fields } from './common.ts';
import { Destination } from './destination.ts';
import { gatewayName } from './gateway-name.ts';

type Report = (path: (string | number)[], message: string) => void;

const subnet = z.string().superRefine((s, ctx) => {
  const problem = cidrProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

const l4MatchShape = {
  destinationSubnets: z.array(subnet).optional(),
  port: portNumber.optional(),
  sourceLabels: labels.optional(),
  sourceNamespace: dnsLabel.optional(),
  /** Where the match applies: `mesh` (sidecars) and/or gateways; absent: the VirtualService's own list. */
  gateways: z.array(gatewayName).optional(),
};

export const L4MatchAttributes = z.strictObject(l4MatchShape);

/** A TLS SNI value: a host name, `*.suffix` or `*` (an IP literal is accepted, as by Istio). */
const sniHost = z.string().superRefine((s, ctx) => {
  if (isIpLiteral(s)) return;
  const problem = checkHost(s, { wildcard: true, star: true });
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

export const TLSMatchAttributes = withRule(
  z.strictObject({ sniHosts: z.array(sniHost).optional(), ...l4MatchShape }),
  (v, report) => {
    if (!Array.isArray(v['sniHosts']) || v['sniHosts'].length === 0) report(['sniHosts'], 'TLS match must have at least one SNI host');
  },
);

export const RouteDestination = z.strictObject({
  destination: Destination,
  // Relative shares, as for http routes (a total other than 100 is a warning: model/l4-routes.ts).
  weight: intRange(0, 2_147_483_647).optional(),
});

/** Istio: several destinations whose weights add up to 0 (or more than Envoy's uint32) are refused. */
function weightRule(v: Fields, report: Report): void {
  const route = v['route'];
  if (!Array.isArray(route) || route.length < 2) return;
  const total = route.reduce<number>((n, d) => n + (isRecord(d) && typeof d['weight'] === 'number' ? d['weight'] : 0), 0);
  if (total <= 0) report(['route'], 'total destination weight = 0: with several destinations the weights must add up to more than 0 (they are relative)');
  else if (total > 4_294_967_295) report(['route'], `the weights add up to ${total}, more than Envoy takes (4294967295)`);
}

export const TCPRoute = withRule(
  z.strictObject({
    match: z.array(L4MatchAttributes).optional(),
    route: z.array(RouteDestination).optional(),
  }),
  (v, report) => {
    if (!Array.isArray(v['route']) || v['route'].length === 0) report(['route'], 'TCP route is required: list at least one destination');
    weightRule(v, report);
  },
);

export const TLSRoute = withRule(
  z.strictObject({
    match: z.array(TLSMatchAttributes).optional(),
    route: z.array(RouteDestination).optional(),
  }),
  (v, report) => {
    if (!Array.isArray(v['match']) || v['match'].length === 0) report(['match'], 'TLS route must have at least one match condition');
    if (!Array.isArray(v['route']) || v['route'].length === 0) report(['route'], 'TLS route is required: list at least one destination');
    weightRule(v, report);
  },
);

/** Does SNI value `sni` fall within host `h` (`*.b.com` holds `a.b.com` and `*.a.b.com`; `*` holds all)? */
export function sniWithin(sni: string, h: string): boolean {
  if (h === '*' || sni === h) return true;
  if (!h.startsWith('*.')) return false;
  const suffix = h.slice(1); // ".b.com"
  return sni.endsWith(suffix) && sni.length > suffix.length;
}

/** The rules of the VirtualService as a whole that involve tcp/tls: called from its spec's rule. */
export function l4SpecRules(v: Fields, report: Report): void {
  const has = (k: string) => Array.isArray(v[k]) && (v[k] as unknown[]).length > 0;
  if (!has('http') && !has('tcp') && !has('tls')) report([], 'http, tcp or tls must be provided in virtual service');
  const hosts = Array.isArray(v['hosts']) ? v['hosts'].filter((h): h is string => typeof h === 'string') : [];
  const tls = Array.isArray(v['tls']) ? v['tls'] : [];
  tls.forEach((route, i) => {
    const matches = isRecord(route) && Array.isArray(route['match']) ? route['match'] : [];
    matches.forEach((m, j) => {
      const snis = isRecord(m) && Array.isArray(m['sniHosts']) ? m['sniHosts'] : [];
      snis.forEach((sni, k) => {
        if (typeof sni !== 'string' || isIpLiteral(sni) || hosts.some((h) => sniWithin(sni, h))) return;
        report(['tls', i, 'match', j, 'sniHosts', k], `SNI host ${JSON.stringify(sni)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
      });
    });
  });
}

export type TCPRoute = z.infer<typeof TCPRoute>;
export type TLSRoute = z.infer<typeof TLSRoute>;
export type L4MatchAttributes = z.infer<typeof L4MatchAttributes>;
export type TLSMatchAttributes = z.infer<typeof TLSMatchAttributes>;
export type RouteDestination = z.infer<typeof RouteDestination>;
