// The admission patch: the JSON Patch from the original pod to the desired one, computed rather
// than written by hand, so it can never disagree with what `meshpilot inject` prints.
import fjp from 'fast-json-patch';

export type JsonPatch = fjp.Operation[];

export function podPatch(original: object, desired: object): JsonPatch {
  return fjp.compare(original, desired);
}

export function applyPatch<T extends object>(doc: T, patch: JsonPatch): T {
  return fjp.applyPatch(structuredClone(doc), patch, true, false).newDocument as T;
}
