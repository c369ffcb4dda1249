// Explanation -> text for people: one section per step of the walk, every item with the rule
// (Kind ns/name, file:line) it came from.
import { grpcCodeForHttp, grpcCodeName } from './filters.ts';
import { formatRef, type RuleRef } from './origins.ts';
import { percentText } from './route-match.ts';
import type { Explanation } from './types.ts';

const from = (r?: RuleRef) => (r ? `  <- ${formatRef(r)}` : '');

export function renderExplanation(e: Explanation): string {
  const L: string[] = [];
  const c = e.caller;
  const labels = Object.entries(c.labels).map(([k, v]) => `${k}=${v}`).join(',') || 'no labels';
  L.push(`caller:   ${c.kind === 'grpc' ? 'proxyless gRPC client' : c.router ? 'Envoy gateway' : 'Envoy sidecar'} ${c.id} (namespace ${c.namespace}, ${labels}${c.ip ? `, ip ${c.ip}` : ''}, locality ${c.locality})`);
  L.push(`          identified by ${c.how}`);
  L.push(`request:  ${e.request.method} ${e.request.authority}${e.request.path}${Object.keys(e.request.headers).length ? `  ${Object.entries(e.request.headers).map(([k, v]) => `${k}: ${v}`).join('; ')}` : ''}`);
  if (e.listener) L.push(`listener: ${e.listener}${e.routeConfig ? ` -> route config ${e.routeConfig}` : ''}`);
  if (e.virtualHost) L.push(`vhost:    ${e.virtualHost.name} (domain "${e.virtualHost.domain}", ${e.virtualHost.how})`);
  if (e.routes.length) {
    L.push('routes:');
    for (const r of e.routes) {
      const mark = r.result === 'matched' ? 'MATCH' : r.result === 'partial' ? 'SOME ' : 'no   ';
      L.push(`  ${mark} #${r.index} ${r.name || '(unnamed)'}: ${r.match}${from(r.rule)}`);
      if (r.reason) L.push(`         ${r.result === 'no match' ? 'fails: ' : ''}${r.reason}`);
    }
  }
  L.push(`outcome:  ${e.outcome.status ? `${e.outcome.status} ` : ''}${e.outcome.summary}`);
  if (e.rewrite) L.push(`rewrite:  ${e.rewrite}`);
  for (const d of e.destinations) {
    L.push(`destination ${d.cluster}: ${e.destinations.length === 1 && d.share === 1 ? 'all requests' : `weight ${d.weight} = ${percentText(d.share)}`}`);
    for (const r of d.rules) L.push(`  from ${formatRef(r)}`);
    if (d.problem) L.push(`  PROBLEM: ${d.problem}`);
    for (const g of d.endpoints) {
      L.push(`  priority ${g.priority}, locality ${g.locality}${g.sameLocalityAsCaller ? ' (caller\'s locality)' : ''}: ${percentText(g.share)} of this cluster's traffic`);
      L.push(`    ${g.endpoints.map((x) => `${x.address}:${x.port}${x.weight ? ` (weight ${x.weight})` : ''}`).join(', ') || '(no endpoints)'}`);
    }
    for (const i of d.inbound) {
      L.push(`  at ${i.endpoint} ${i.workload}: ${i.decision.toUpperCase()} - ${i.reason}`);
      const t = i.tls;
      if (t && (t.caller !== 'plaintext' || t.callee !== 'plaintext only')) {
        L.push(`    tls: caller sends ${t.caller}${t.accepts.length ? ` (accepts ${t.accepts.join(', ')})` : ''}; callee takes ${t.callee}${t.calleeIdentity ? ` as ${t.calleeIdentity}` : ''}: ${t.reason}${from(t.calleeRule)}`);
      }
      if (i.jwt) L.push(`    jwt: ${i.jwt.reason}`);
      for (const s of i.authz) {
        L.push(`    ${s.filter}: ${s.reason}`);
        for (const m of s.matched) L.push(`      matched ${m.policy}${from(m.rule)}`);
        for (const m of s.unknown) L.push(`      unknown ${m.policy}: ${m.why}${from(m.rule)}`);
      }
    }
  }
  if (e.weightsFrom) L.push(`weights:  set by the rollout of ${formatRef(e.weightsFrom)}, not the VirtualService's`);
  for (const f of e.faults) {
    const what = f.kind === 'delay' ? `delay ${f.delay ?? '(from header)'}` : `abort with ${f.grpcStatus !== undefined ? `gRPC ${grpcCodeName(f.grpcStatus)}` : f.httpStatus !== undefined ? `HTTP ${f.httpStatus}${e.caller.kind === 'grpc' ? ` (the gRPC caller sees ${grpcCodeForHttp(f.httpStatus)})` : ''}` : 'a status from the request header'}`;
    L.push(`fault:    ${what} for ${percentText(f.share)} of requests${f.notApplied ? ` - NOT for this request: ${f.notApplied}` : ''}${from(f.rule)}`);
  }
  for (const m of e.mirrors) L.push(`mirror:   ${percentText(m.share)} copied to ${m.cluster} (responses discarded)${from(m.rule)}`);
  if (e.timeout) L.push(`timeout:  ${e.timeout.value} (${e.timeout.note})${from(e.timeout.rule)}`);
  if (e.retry) L.push(`retries:  ${e.retry.attempts} on ${e.retry.on}${e.retry.perTryTimeout ? `, ${e.retry.perTryTimeout} per try` : ''} (${e.retry.note})${from(e.retry.rule)}`);
  for (const r of e.rateLimits) {
    L.push(`ratelimit: ${r.side}${r.endpoint ? ` at ${r.endpoint}` : ''}: ${r.tokens} requests per ${r.fillInterval}, ${r.enforcedShare > 0 ? `enforced (429 beyond)` : 'shadow (counted, never refused)'}${from(r.rule)}`);
  }
  if (e.decision !== 'none') L.push(`decision: ${e.decision.toUpperCase()}`);
  for (const n of e.notes) L.push(`note:     ${n}`);
  return `${L.join('\n')}\n`;
}
