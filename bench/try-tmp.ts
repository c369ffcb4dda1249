import { serveStartupOnce } from './serve-startup.ts';
const r = await serveStartupOnce({ dir: '/tmp/startup-mesh/m1000', services: 1000, client: 'sidecar', scope: 50, cpuProfDir: '/tmp/startup-prof/after1' });
console.log(r.readyMs.toFixed(0), r.warmMs.toFixed(0), r.cpuReadyMs, r.cpuWarmMs);
process.exit(0);
