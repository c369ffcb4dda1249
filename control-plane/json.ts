// The two JSON helpers every stage shares: the loose JSON-object type that config, Envoy
// resources and Kubernetes documents are read as, and the deep freeze that makes loaded rule
// objects and built models immutable.

/** A JSON object read loosely: field names to values whose shape the reader checks. */
export type Json = Record<string, unknown>;

/**
 * Freezes `v` and everything reachable from it, and returns it. An object that is already frozen
 * is taken to be deeply frozen and not walked again, so shared frozen parts cost nothing.
 */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}
