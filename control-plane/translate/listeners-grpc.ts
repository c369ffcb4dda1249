// Proxyless gRPC: one api_listener per name a client may dial (`host:port`, and the short forms
// from its own namespace), all pointing at the route config for that host and port.
import { hostAliases } from '../model/hosts.ts';
import type { Model } from '../model/types.ts';
import { httpConnectionManager } from './hcm.ts';
import { httpFilters } from './http-filters.ts';
import type { Proxy } from './proxy.ts';
import type { Json } from './string-match.ts';
import { LISTENER } from './type-urls.ts';

export function grpcListeners(model: Model, proxy: Proxy): Json[] {
  return model.routeTables.flatMap((t) =>
    hostAliases(t.host, proxy.namespace).map((alias) => ({
      '@type': LISTENER,
      name: `${alias}:${t.port}`,
      api_listener: {
        api_listener: httpConnectionManager(`${alias}:${t.port}`, { rds: `${t.host}:${t.port}` }, httpFilters({ model, proxy, side: 'outbound', port: t.port, host: t.host })),
      },
    })),
  );
}
