// POST /debug/explain: the same inputs as `meshpilot explain`, as JSON, answered from the running
// control plane's current rules; `from` may also be the node id of a connected proxy, whose
// identity is then taken as it connected. 400 with the field path for a bad body or request line.
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { MeshState } from '../model/compile.ts';
import type { Proxy } from '../translate/proxy.ts';
import { parseLabels } from './caller.ts';
import { explain } from './explain.ts';
import { renderExplanation } from './render.ts';
import { ExplainInputError } from './request.ts';

const body = z.strictObject({
  request: z.string().min(1),
  from: z.string().optional(),
  kind: z.enum(['envoy', 'grpc']).optional(),
  calleeKind: z.enum(['envoy', 'grpc']).optional(),
  namespace: z.string().optional(),
  labels: z.union([z.record(z.string(), z.string()), z.string()]).optional(),
  ip: z.string().optional(),
  locality: z.string().optional(),
  /** `["end-user: jason"]` or `{ "end-user": "jason" }` */
  headers: z.union([z.array(z.string()), z.record(z.string(), z.string())]).optional(),
  /** Also return the text rendering. */
  text: z.boolean().optional(),
});

/** `connected`: the proxies connected now, so `from` may name one by its node id. */
export function explainHandler(state: () => MeshState, connected: () => Iterable<Proxy> = () => []) {
  return (req: Request, res: Response) => {
    const parsed = body.safeParse(req.body ?? {});
    if (!parsed.success) {
      const errors = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`);
      // `error` as every other admin answer has it; `errors` lists each field.
      res.status(400).json({ error: errors.join('; '), errors });
      return;
    }
    const b = parsed.data;
    try {
      const headers = Array.isArray(b.headers) ? b.headers : Object.entries(b.headers ?? {}).map(([k, v]) => `${k}: ${v}`);
      const labels = typeof b.labels === 'string' ? parseLabels(b.labels) : b.labels;
      const { text, labels: _raw, headers: _h, ...input } = b;
      const e = explain(state(), { ...input, headers, ...(labels ? { labels } : {}) }, connected());
      res.json(text ? { ...e, text: renderExplanation(e) } : e);
    } catch (err) {
      if (err instanceof ExplainInputError) res.status(400).json({ error: err.message, errors: [err.message] });
      else res.status(500).json({ error: `explain failed: ${(err as Error).message}`, errors: [`explain failed: ${(err as Error).message}`] });
    }
  };
}
