// A route destination (VirtualService http, tcp and tls routes, mirrors): a service host, an
// optional subset and port.
import { z } from 'zod';
import { PortSelector, dnsLabel, host } from './common.ts';

export const Destination = z.strictObject({
  host: host({ wildcard: true, partial: true }),
  subset: dnsLabel.optional(),
  port: PortSelector.optional(),
});
