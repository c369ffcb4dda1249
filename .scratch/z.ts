import { z } from 'zod';
const Inner = z.strictObject({ a: z.string().optional(), b: z.string().optional(), n: z.number().optional() })
  .superRefine((v, ctx) => { const c = ['a','b'].filter(k => (v as any)[k] !== undefined).length; if (c !== 1) ctx.addIssue({ code: 'custom', message: 'exactly one of a,b', path: [] }); });
const Outer = z.strictObject({ x: Inner, y: z.array(Inner), w: z.number().int().min(0).max(100).optional() });
const r = Outer.safeParse({ x: { a: 'q', b: 'r', zz: 1 }, y: [{ n: 'bad' }, {}], extra: 1, w: 1.5 });
console.log(JSON.stringify(r.error?.issues, null, 1));
const Inner2 = z.strictObject({ a: z.string().optional(), b: z.string().optional(), n: z.number().optional() })
  .refine((v) => ['a','b'].filter(k => (v as any)[k] !== undefined).length === 1, { message: 'exactly one (when)', when: () => true });
console.log(JSON.stringify(Inner2.safeParse({ a: 'q', b: 'r', n: 'x' }).error?.issues, null, 1));
console.log(JSON.stringify(Inner2.safeParse(5).error?.issues, null, 1));
