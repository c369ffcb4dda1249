// VirtualService delegation (Istio's http[].delegate): a root's http entry is replaced by the
// delegate's http entries, each narrowed by the root entry's matches and inheriting the root
// entry's settings it does not set itself. Pure functions on the input types; routes.ts resolves
// the merged entries like any other.
import type { HttpRouteIn, MatchIn, StringMatchIn } from './input.ts';

/**
 * Whether a delegate's string match cannot be narrowed into the root's, as Istio decides: a regex
 * on either side conflicts with any other match (Istio cannot intersect them); under an exact
 * root only the same exact value fits; under a prefix root, an exact or prefix that starts with
 * the root's prefix fits. An absent match on either side never conflicts.
 */
export function stringMatchConflict(root: StringMatchIn | undefined, leaf: StringMatchIn | undefined): boolean {
  if (!root || !leaf) return false;
  if (root.regex !== undefined || leaf.regex !== undefined) return true;
  if (root.exact !== undefined) return leaf.exact !== root.exact;
  if (root.prefix !== undefined) {
    if (leaf.prefix !== undefined) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact !== undefined) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

function recordConflict(root: Record<string, StringMatchIn> | undefined, leaf: Record<string, StringMatchIn> | undefined): boolean {
  return Object.entries(leaf ?? {}).some(([k, m]) => stringMatchConflict(root?.[k], m));
}

/** Why a delegate match cannot narrow a root match (undefined: it can). */
export function matchConflict(root: MatchIn, leaf: MatchIn): string | undefined {
  if (stringMatchConflict(root.uri, leaf.uri)) return 'uri';
  if (stringMatchConflict(root.method, leaf.method)) return 'method';
  if (recordConflict(root.headers, leaf.headers)) return 'headers';
  if (recordConflict(root.withoutHeaders, leaf.withoutHeaders)) return 'withoutHeaders';
  if (recordConflict(root.queryParams, leaf.queryParams)) return 'queryParams';
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return 'ignoreUriCase';
  if (root.port !== undefined && leaf.port !== undefined && root.port !== leaf.port) return 'port';
  if (root.sourceNamespace !== undefined && leaf.sourceNamespace !== undefined && root.sourceNamespace !== leaf.sourceNamespace) return 'sourceNamespace';
  if (Object.entries(leaf.sourceLabels ?? {}).some(([k, v]) => root.sourceLabels?.[k] !== undefined && root.sourceLabels[k] !== v)) return 'sourceLabels';
  if (root.gateways?.length && leaf.gateways?.length && !leaf.gateways.every((g) => root.gateways!.includes(g))) return 'gateways';
  return undefined;
}

function mergeRecord<T>(root: Record<string, T> | undefined, leaf: Record<string, T> | undefined): Record<string, T> | undefined {
  return root || leaf ? { ...root, ...leaf } : undefined;
}

/** The delegate's match narrowed by the root's: the delegate's conditions, plus the root's it leaves out. */
export function mergeMatch(root: MatchIn, leaf: MatchIn): MatchIn {
  const headers = mergeRecord(root.headers, leaf.headers);
  const withoutHeaders = mergeRecord(root.withoutHeaders, leaf.withoutHeaders);
  const queryParams = mergeRecord(root.queryParams, leaf.queryParams);
  const sourceLabels = mergeRecord(root.sourceLabels, leaf.sourceLabels);
  const uri = leaf.uri ?? root.uri;
  const method = leaf.method ?? root.method;
  const port = leaf.port ?? root.port;
  const sourceNamespace = leaf.sourceNamespace ?? root.sourceNamespace;
  const ignoreUriCase = leaf.ignoreUriCase ?? root.ignoreUriCase;
  const gateways = leaf.gateways?.length ? leaf.gateways : root.gateways;
  return {
    ...(leaf.name ?? root.name ? { name: leaf.name ?? root.name } : {}),
    ...(uri ? { uri } : {}),
    ...(method ? { method } : {}),
    ...(headers ? { headers } : {}),
    ...(withoutHeaders ? { withoutHeaders } : {}),
    ...(queryParams ? { queryParams } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(sourceLabels ? { sourceLabels } : {}),
    ...(sourceNamespace !== undefined ? { sourceNamespace } : {}),
    ...(ignoreUriCase !== undefined ? { ignoreUriCase } : {}),
    ...(gateways ? { gateways } : {}),
  };
}

/**
 * The matches of a delegated entry: each delegate match combined with every root match it does
 * not conflict with. A delegate match that fits no root match makes the whole entry unusable
 * (Istio drops it): the reason is returned instead.
 */
export function mergeMatches(root: MatchIn[] | undefined, leaf: MatchIn[] | undefined): { matches: MatchIn[] | undefined } | { conflict: string } {
  if (!root?.length) return { matches: leaf };
  if (!leaf?.length) return { matches: root };
  const out: MatchIn[] = [];
  for (const [li, l] of leaf.entries()) {
    const fits = root.filter((r) => matchConflict(r, l) === undefined);
    if (!fits.length) return { conflict: `its match[${li}] ${root.map((r) => matchConflict(r, l)).join('/')} does not fit within the root route's match` };
    out.push(...fits.map((r) => mergeMatch(r, l)));
  }
  return { matches: out };
}

/**
 * A delegate's http entry as it applies under the root's entry: matches narrowed, and the root's
 * rewrite, timeout, retries, fault, mirrors, corsPolicy and headers where the delegate sets none
 * (Istio's rule: the delegate's own setting wins whole, fields are not merged inside).
 */
export function mergeDelegated(root: HttpRouteIn, leaf: HttpRouteIn): { http: HttpRouteIn } | { conflict: string } {
  const m = mergeMatches(root.match, leaf.match);
  if ('conflict' in m) return m;
  const { match: _match, ...rest } = leaf;
  const ownMirror = leaf.mirror !== undefined || leaf.mirrors !== undefined;
  const http: HttpRouteIn = {
    ...rest,
    ...(m.matches ? { match: m.matches } : {}),
    ...(leaf.rewrite ?? root.rewrite ? { rewrite: leaf.rewrite ?? root.rewrite } : {}),
    ...(leaf.timeout ?? root.timeout ? { timeout: leaf.timeout ?? root.timeout } : {}),
    ...(leaf.retries ?? root.retries ? { retries: leaf.retries ?? root.retries } : {}),
    ...(leaf.fault ?? root.fault ? { fault: leaf.fault ?? root.fault } : {}),
    ...(leaf.corsPolicy ?? root.corsPolicy ? { corsPolicy: leaf.corsPolicy ?? root.corsPolicy } : {}),
    ...(leaf.headers ?? root.headers ? { headers: leaf.headers ?? root.headers } : {}),
    ...(leaf.websocketUpgrade ?? root.websocketUpgrade ? { websocketUpgrade: leaf.websocketUpgrade ?? root.websocketUpgrade } : {}),
    ...(!ownMirror && root.mirror ? { mirror: root.mirror, ...(root.mirrorPercentage ? { mirrorPercentage: root.mirrorPercentage } : {}) } : {}),
    ...(!ownMirror && root.mirrors ? { mirrors: root.mirrors } : {}),
  };
  // A redirect or direct response has no use for a forwarding setting inherited from the root.
  if (leaf.redirect || leaf.directResponse) for (const f of ['rewrite', 'timeout', 'retries', 'fault', 'mirror', 'mirrorPercentage', 'mirrors', 'websocketUpgrade'] as const) if (leaf[f] === undefined) delete http[f];
  return { http };
}
