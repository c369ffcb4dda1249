// security.istio.io AuthorizationPolicy. Not supported yet: every field is reported as such.
import { z } from 'zod';

export const AuthorizationPolicySpec = z.strictObject({});
export type AuthorizationPolicySpec = z.infer<typeof AuthorizationPolicySpec>;
