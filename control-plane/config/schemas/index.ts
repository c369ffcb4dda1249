// Zod schemas of the Istio objects meshpilot accepts, and the spec types inferred from them.
export * from './common.ts';
export * from './virtual-service.ts';
export * from './virtual-service-l4.ts';
export * from './destination-rule.ts';
export * from './client-tls.ts';
export * from './locality-lb.ts';
export * from './service-entry.ts';
export * from './workload-entry.ts';
export * from './authorization-policy.ts';
export * from './peer-authentication.ts';
export * from './request-authentication.ts';
export * from './rate-limit.ts';
export * from './document.ts';
