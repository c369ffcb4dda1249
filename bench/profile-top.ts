// Summarises a V8 .cpuprofile (from `npm run bench -- --cpu-prof DIR`): the functions with the most
// self time, and the meshpilot functions with the most inclusive time (time with them on the stack).
//   node --import tsx bench/profile-top.ts FILE.cpuprofile [--top 25] [--filter control-plane]
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  console.error('usage: profile-top.ts FILE.cpuprofile [--top N] [--filter TEXT]');
  process.exit(1);
}
const top = Number(args[args.indexOf('--top') + 1]) || 25;
const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1]! : '/control-plane/';
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const key = (n: Node) => {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*\/(node_modules\/)/, '$1').replace(/.*\/(control-plane|bench)\//, '$1/');
  return `${n.callFrame.functionName || '(anonymous)'} ${url}${url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
};

const self = new Map<string, number>();
const incl = new Map<string, number>();
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i] ?? 0;
  total += dt;
  let id: number | undefined = p.samples[i]!;
  const leaf = byId.get(id)!;
  // The profiler serialising its own profile (Profiler.stop over node:inspector) is not the server's work.
  let up: number | undefined = id;
  let profiler = false;
  while (up !== undefined && !profiler) {
    profiler = byId.get(up)!.callFrame.url === 'node:inspector';
    up = parent.get(up);
  }
  if (profiler) continue;
  self.set(key(leaf), (self.get(key(leaf)) ?? 0) + dt);
  const seen = new Set<string>();
  while (id !== undefined) {
    const k = key(byId.get(id)!);
    if (!seen.has(k)) {
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + dt);
    }
    id = parent.get(id);
  }
}
const idle = [...self].filter(([k]) => k.startsWith('(idle)') || k.startsWith('(program)')).reduce((s, [, v]) => s + v, 0);
const busy = total - idle;
const fmt = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (percentages are of busy time)`);
console.log(`\ntop ${top} by self time:`);
for (const [k, v] of [...self].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(v)}  ${k}`);
console.log(`\ntop ${top} by inclusive time, functions in ${filter}:`);
for (const [k, v] of [...incl].filter(([k]) => k.includes(filter.replace(/^\/|\/$/g, ''))).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(v)}  ${k}`);
