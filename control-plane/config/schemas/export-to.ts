// `exportTo` (ServiceEntry, VirtualService, DestinationRule): which namespaces see the object.
// `.` is the object's own namespace, `*` every namespace, `~` none; otherwise namespace names.
// As Istio validates it: no duplicates, and `*` / `~` only on their own.
import { z } from 'zod';
import { isDnsLabel } from './common.ts';

export const exportTo = z.array(z.string()).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((v, i) => {
    if (v !== '.' && v !== '*' && v !== '~' && !isDnsLabel(v)) {
      ctx.addIssue({ code: 'custom', path: [i], message: `${JSON.stringify(v)} is not ".", "*", "~" or a namespace name`, input: v });
    } else if (seen.has(v)) {
      ctx.addIssue({ code: 'custom', path: [i], message: `duplicate entry ${JSON.stringify(v)}`, input: v });
    }
    seen.add(v);
  });
  for (const alone of ['*', '~']) {
    if (seen.has(alone) && list.length > 1) {
      ctx.addIssue({ code: 'custom', path: [list.indexOf(alone)], message: `${JSON.stringify(alone)} cannot be combined with other exportTo entries`, input: list });
    }
  }
});
