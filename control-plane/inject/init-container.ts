// The init container that sends the pod's TCP traffic through Envoy: inbound to virtualInbound,
// outbound to virtualOutbound. Envoy's own traffic (its UID), loopback, the readiness ports and the
// configured ports and CIDR blocks are left alone. The rules are built as a list, one iptables call
// each, and run by sh with -e, so the pod fails to start rather than run half-redirected.
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { PodOverrides } from './annotations.ts';
import type { InjectionConfig } from './config.ts';
import { INIT_CONTAINER } from './names.ts';

const IN = 'MESHPILOT_INBOUND';
const OUT = 'MESHPILOT_OUTPUT';

function uniqueSorted<T extends number | string>(xs: T[]): T[] {
  return [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface RedirectPlan {
  excludeInboundPorts: number[];
  excludeOutboundPorts: number[];
  excludeOutboundCIDRs: string[];
}

export function redirectPlan(config: InjectionConfig, overrides: PodOverrides): RedirectPlan {
  const r = config.redirect;
  return {
    // Readiness must reach Envoy's own listener, and the agent's startup probe the agent (it runs
    // before Envoy, so a redirected probe would find nothing listening); admin is on localhost and
    // never arrives from outside, but excluding it too keeps a misconfigured admin address from looping.
    excludeInboundPorts: uniqueSorted([config.ports.health, config.ports.agentHealth, config.ports.admin, ...r.excludeInboundPorts, ...overrides.excludeInboundPorts]),
    excludeOutboundPorts: uniqueSorted([...r.excludeOutboundPorts, ...overrides.excludeOutboundPorts]),
    excludeOutboundCIDRs: uniqueSorted([...r.excludeOutboundCIDRs, ...overrides.excludeOutboundCIDRs]),
  };
}

/** The iptables commands, in order (nat table). */
export function iptablesRules(config: InjectionConfig, plan: RedirectPlan): string[] {
  const nat = (rule: string) => `iptables -w -t nat ${rule}`;
  const uid = config.proxy.uid;
  return [
    nat(`-N ${IN}`),
    nat(`-N ${OUT}`),
    nat(`-A PREROUTING -p tcp -j ${IN}`),
    nat(`-A OUTPUT -p tcp -j ${OUT}`),
    ...plan.excludeInboundPorts.map((p) => nat(`-A ${IN} -p tcp --dport ${p} -j RETURN`)),
    nat(`-A ${IN} -p tcp -j REDIRECT --to-ports ${config.ports.inbound}`),
    // Envoy's own connections (to upstreams, to the app on 127.0.0.1, to meshpilot) go out as they are.
    nat(`-A ${OUT} -m owner --uid-owner ${uid} -j RETURN`),
    nat(`-A ${OUT} -m owner --gid-owner ${uid} -j RETURN`),
    nat(`-A ${OUT} -d 127.0.0.1/32 -j RETURN`),
    ...plan.excludeOutboundPorts.map((p) => nat(`-A ${OUT} -p tcp --dport ${p} -j RETURN`)),
    ...plan.excludeOutboundCIDRs.map((c) => nat(`-A ${OUT} -d ${c} -j RETURN`)),
    nat(`-A ${OUT} -p tcp -j REDIRECT --to-ports ${config.ports.outbound}`),
  ];
}

export function initContainer(config: InjectionConfig, overrides: PodOverrides): IContainer {
  const script = ['set -eu', ...iptablesRules(config, redirectPlan(config, overrides))].join('\n');
  return {
    name: INIT_CONTAINER,
    image: config.redirect.image,
    command: ['/bin/sh', '-c', script],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
    securityContext: {
      // Root is needed to program iptables, but only with these two capabilities.
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };
}
