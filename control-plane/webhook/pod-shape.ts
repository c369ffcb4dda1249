// What the webhook checks about a pod before injecting it. The API server always sends a typed pod,
// but anyone who can reach the webhook can send anything: these checks turn such bodies into a
// 400 naming the problem instead of an exception (a 500) deep inside injection.
import { z } from 'zod';

/**
 * Deeper pods are refused. Injection copies and compares the pod recursively, which overflows the
 * stack at a few thousand levels; a real pod (managedFields included) is some 20 levels deep.
 */
export const MAX_POD_DEPTH = 100;

/** Whether `value` nests objects/arrays more than `max` levels deep; iterative, so any depth is safe. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const todo: Array<[unknown, number]> = [[value, 0]];
  while (todo.length) {
    const [v, depth] = todo.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(v)) todo.push([child, depth + 1]);
  }
  return false;
}

const stringMap = z.record(z.string(), z.string());
const containers = z.array(z.looseObject({}));

/** Only the fields injection reads; everything else passes through untouched. */
export const PodShape = z.looseObject({
  metadata: z.looseObject({ namespace: z.string().optional(), labels: stringMap.optional(), annotations: stringMap.optional() }).optional(),
  spec: z.looseObject({ containers: containers.optional(), initContainers: containers.optional(), hostNetwork: z.boolean().optional() }).optional(),
});
