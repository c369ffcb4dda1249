// traffic.meshpilot.io RateLimit. Not supported yet: every field is reported as such.
import { z } from 'zod';

export const RateLimitSpec = z.strictObject({});
export type RateLimitSpec = z.infer<typeof RateLimitSpec>;
