// Proxyless gRPC: one api_listener per name a client may dial (`host:port`, and the short forms
// from its own namespace), all pointing at the route config for that host and port.
import type { Model, RouteTable, UpstreamCluster } from '../model/types.ts';
import type { TranslateMemo } from './memo.ts';
import { callerText, tableDeps } from './table-memo.ts';
import { httpConnectionManager, httpFilters } from './hcm.ts';
import { grpcNames } from './route-configs.ts';
import type { Proxy } from './proxy.ts';
import type { Json } from '../json.ts';
import { LISTENER } from './type-urls.ts';

/** The api_listeners of `tables` (all of the model's by default). */
export function grpcListeners(model: Model, proxy: Proxy, clusters: Map<string, UpstreamCluster>, memo: TranslateMemo, tables: readonly RouteTable[] = model.routeTables): Json[] {
  const names = grpcNames(model, proxy, memo);
  const caller = callerText(proxy);
  return tables.flatMap((t) =>
    memo.grpcListeners.get(t, `${caller}|${names.get(t)!.join(',')}`, tableDeps(model, t, clusters), () =>
      names.get(t)!.map((name) => ({
        '@type': LISTENER,
        name,
        api_listener: {
          api_listener: httpConnectionManager(name, { rds: `${t.host}:${t.port}` }, httpFilters({ model, proxy, side: 'outbound', port: t.port, host: t.host })),
        },
      })),
    ),
  );
}
