// Envoy schema check: realistic resources pass and round-trip; each rule Envoy enforces is refused
// with the field path. Protos load once (getRoot caches) for the whole file.
import { beforeAll, describe, expect, it } from 'vitest';
import { getRoot, lookupType, TYPE_URL } from '../control-plane/envoy/protos.ts';
import { checkResource, decodeResource, encodeResource, ResourceCheckError, type ResourceJson } from '../control-plane/envoy/check.ts';
import { fromProto3Json, toProto3Json } from '../control-plane/envoy/proto-json.ts';

const T = 'type.googleapis.com/';
const HCM = `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`;
const ROUTER = `${T}envoy.extensions.filters.http.router.v3.Router`;
const FAULT = `${T}envoy.extensions.filters.http.fault.v3.HTTPFault`;
const LOCAL_RL = `${T}envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`;
const ADS = { ads: {}, resource_api_version: 'V3' };

const clone = <X>(x: X): X => structuredClone(x);

function hcm(httpFilters: unknown[], extra: Record<string, unknown> = {}) {
  return {
    '@type': HCM,
    stat_prefix: 'outbound_0.0.0.0_9080',
    rds: { route_config_name: '9080', config_source: ADS },
    http_filters: httpFilters,
    ...extra,
  };
}
const routerFilter = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } };
const faultFilter = { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT } };

function listener(): ResourceJson {
  return {
    '@type': TYPE_URL.listener,
    name: '0.0.0.0_9080',
    address: { socket_address: { address: '0.0.0.0', port_value: 9080 } },
    traffic_direction: 'OUTBOUND',
    listener_filters: [{
      name: 'envoy.filters.listener.http_inspector',
      typed_config: { '@type': `${T}envoy.extensions.filters.listener.http_inspector.v3.HttpInspector` },
    }],
    filter_chains: [{
      name: 'http',
      filter_chain_match: { application_protocols: ['http/1.1', 'h2c'] },
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: hcm([
          faultFilter,
          {
            name: 'envoy.filters.http.local_ratelimit',
            typed_config: {
              '@type': LOCAL_RL,
              stat_prefix: 'http_local_rate_limiter',
              token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: '1s' },
              filter_enabled: { runtime_key: 'local_rate_limit_enabled', default_value: { numerator: 100 } },
            },
          },
          routerFilter,
        ], {
          stream_idle_timeout: '300s',
          common_http_protocol_options: { idle_timeout: '3600s' },
          use_remote_address: false,
        }),
      }],
    }, {
      name: 'tcp-passthrough',
      filter_chain_match: { transport_protocol: 'tls' },
      filters: [{
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: {
          '@type': `${T}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
          stat_prefix: 'passthrough',
          cluster: 'PassthroughCluster',
        },
      }],
    }],
  };
}

function apiListener(): ResourceJson {
  return {
    '@type': TYPE_URL.listener,
    name: 'reviews.default.svc.cluster.local:9080',
    api_listener: { api_listener: hcm([faultFilter, routerFilter], { stat_prefix: 'grpc' }) },
  };
}

function routeConfig(): ResourceJson {
  return {
    '@type': TYPE_URL.route,
    name: '9080',
    virtual_hosts: [{
      name: 'reviews.default.svc.cluster.local:9080',
      domains: ['reviews', 'reviews.default.svc.cluster.local', 'reviews:9080'],
      routes: [{
        name: 'jason',
        match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
        route: { cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', timeout: '0.500s' },
      }, {
        name: 'api',
        match: { safe_regex: { regex: '^/api/v[0-9]+/.*$' }, headers: [{ name: 'x-canary', present_match: true }] },
        route: {
          weighted_clusters: {
            clusters: [
              { name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: 80 },
              { name: 'outbound|9080|v3|reviews.default.svc.cluster.local', weight: 20 },
            ],
          },
          timeout: '10s',
          retry_policy: { retry_on: '5xx,connect-failure,refused-stream', num_retries: 3, per_try_timeout: '2s' },
        },
        request_headers_to_add: [{ header: { key: 'x-mesh-route', value: 'api' } }],
      }, {
        name: 'default',
        match: { prefix: '/' },
        route: { cluster: 'outbound|9080|v1|reviews.default.svc.cluster.local', timeout: '15s' },
      }],
    }, {
      name: 'ratings.default.svc.cluster.local:9080',
      domains: ['ratings', 'ratings.default.svc.cluster.local'],
      routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||ratings.default.svc.cluster.local' } }],
      typed_per_filter_config: {
        'envoy.filters.http.fault': {
          '@type': FAULT,
          abort: { http_status: 503, percentage: { numerator: 10 } },
          delay: { fixed_delay: '5s', percentage: { numerator: 50 } },
        },
      },
    }, {
      name: 'allow_any',
      domains: ['*'],
      routes: [{ match: { prefix: '/' }, route: { cluster: 'PassthroughCluster' } }],
    }],
    validate_clusters: false,
  };
}

function edsCluster(): ResourceJson {
  return {
    '@type': TYPE_URL.cluster,
    name: 'outbound|9080|v1|reviews.default.svc.cluster.local',
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS, service_name: 'outbound|9080|v1|reviews.default.svc.cluster.local' },
    connect_timeout: '10s',
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: {
      thresholds: [{ priority: 'HIGH', max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 }],
    },
    outlier_detection: { consecutive_5xx: 5, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 50 },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': `${T}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    metadata: { filter_metadata: { istio: { config: '/apis/networking/v1/destinationrule/reviews', weights: [1, 2.5, true, null] } } },
  };
}

function cla(): ResourceJson {
  const ep = (ip: string, weight?: number) => ({
    endpoint: { address: { socket_address: { address: ip, port_value: 9080 } } },
    health_status: 'HEALTHY',
    ...(weight ? { load_balancing_weight: weight } : {}),
  });
  return {
    '@type': TYPE_URL.endpoint,
    cluster_name: 'outbound|9080|v1|reviews.default.svc.cluster.local',
    endpoints: [
      { locality: { region: 'us-east1', zone: 'us-east1-b' }, lb_endpoints: [ep('10.0.0.1', 2), ep('10.0.0.2')], load_balancing_weight: 80 },
      { locality: { region: 'us-east1', zone: 'us-east1-c' }, lb_endpoints: [ep('10.0.1.1')], load_balancing_weight: 20 },
      { locality: { region: 'us-west1' }, lb_endpoints: [ep('10.1.0.1')], load_balancing_weight: 100, priority: 1 },
    ],
    policy: { overprovisioning_factor: 140 },
  };
}

/** The violations of a resource, asserting there is one at `path` whose message contains `fragment`. */
function expectViolation(json: ResourceJson, path: string, fragment: string) {
  const v = checkResource(json);
  expect(v, JSON.stringify(v, null, 2)).toContainEqual({ path, message: expect.stringContaining(fragment) });
  expect(() => encodeResource(json)).toThrow(ResourceCheckError);
  return v;
}

beforeAll(() => {
  getRoot();
});

describe('valid resources', () => {
  const cases: [string, () => ResourceJson][] = [
    ['listener with HCM (RDS over ADS)', listener],
    ['gRPC api_listener', apiListener],
    ['route configuration', routeConfig],
    ['EDS cluster', edsCluster],
    ['cluster load assignment', cla],
  ];
  for (const [name, make] of cases) {
    it(`${name}: no violations and encode->decode round-trips`, () => {
      const json = make();
      expect(checkResource(json)).toEqual([]);
      const any = encodeResource(json);
      expect(any.type_url).toBe(json['@type']);
      expect(any.value.length).toBeGreaterThan(20);
      expect(decodeResource(any)).toEqual(json);
    });
  }

  it('encoding is deterministic: key order of objects and maps does not change the bytes', () => {
    const a = edsCluster();
    const b = edsCluster();
    (b.metadata as any).filter_metadata = { zz: { b: 1, a: 2 }, istio: (a.metadata as any).filter_metadata.istio };
    (a.metadata as any).filter_metadata = { istio: (a.metadata as any).filter_metadata.istio, zz: { a: 2, b: 1 } };
    const reversed = Object.fromEntries(Object.entries(b).reverse()) as ResourceJson;
    expect(encodeResource(reversed).value.equals(encodeResource(a).value)).toBe(true);
    expect(encodeResource(a).value.equals(encodeResource(clone(a)).value)).toBe(true);
    // Explicit proto3 defaults (and JSON null = unset) are not written: same bytes as leaving them out.
    const withDefaults = { ...clone(a), lb_policy: 'LEAST_REQUEST', dns_lookup_family: 'AUTO', alt_stat_name: '', respect_dns_ttl: false, upstream_config: null };
    expect(encodeResource(withDefaults).value.equals(encodeResource(a).value)).toBe(true);
  });

  it('keeps a string field whose value is "0" (only 64-bit integers treat "0" as the default)', () => {
    const route = {
      '@type': TYPE_URL.route,
      name: 'r',
      virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/', headers: [{ name: 'x-retry', string_match: { exact: '0' } }] }, route: { cluster: 'c' } }] }],
    };
    expect(checkResource(route)).toEqual([]);
    const back = decodeResource(encodeResource(route)) as any;
    expect(back.virtual_hosts[0].routes[0].match.headers[0].string_match.exact).toBe('0');
  });

  it('rejects a field given twice (snake_case and camelCase)', () => {
    const c = { ...edsCluster(), connectTimeout: '1s' };
    expectViolation(c, 'connect_timeout', 'field set twice');
  });

  it('accepts lowerCamelCase json names, int64 strings and non-canonical durations, and decodes canonically', () => {
    const json: ResourceJson = {
      '@type': TYPE_URL.cluster,
      name: 'c',
      type: 'STRICT_DNS',
      connectTimeout: '0.25s',
      perConnectionBufferLimitBytes: 32768,
      loadAssignment: {
        clusterName: 'c',
        endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'example.com', portValue: 80 } } } }] }],
      },
      dnsRefreshRate: '60s',
    };
    expect(checkResource(json)).toEqual([]);
    const back = decodeResource(encodeResource(json));
    expect(back.connect_timeout).toBe('0.250s');
    expect(back.per_connection_buffer_limit_bytes).toBe(32768);
    expect((back.load_assignment as any).endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value).toBe(80);
    // int64 as decimal string and as number, beyond 2^53 as a string.
    const rl = lookupType('envoy.config.route.v3.RetryPolicy.RateLimitedRetryBackOff');
    expect(rl).toBeDefined();
    const u64 = lookupType('google.protobuf.UInt64Value');
    const big = fromProto3Json(u64, '18446744073709551615');
    expect(big.errors).toEqual([]);
    expect(toProto3Json(u64, big.message!)).toBe('18446744073709551615');
    expect(fromProto3Json(u64, 2 ** 60).errors[0].message).toContain('decimal string');
  });

  it('handles well-known types: Timestamp, Struct, wrappers, Empty, bytes', () => {
    const ts = lookupType('google.protobuf.Timestamp');
    const t = fromProto3Json(ts, '2024-02-29T12:30:00.5+01:00');
    expect(t.errors).toEqual([]);
    expect(toProto3Json(ts, t.message!)).toBe('2024-02-29T11:30:00.500Z');
    expect(fromProto3Json(ts, '2023-02-29T00:00:00Z').errors[0].message).toContain('invalid timestamp');
    const dur = lookupType('google.protobuf.Duration');
    expect(toProto3Json(dur, fromProto3Json(dur, '-1.000000001s').message!)).toBe('-1.000000001s');
    const empty = lookupType('google.protobuf.Empty');
    expect(fromProto3Json(empty, {}).errors).toEqual([]);
    expect(fromProto3Json(empty, { x: 1 }).errors[0].message).toContain('unknown field "x"');
    const bytes = lookupType('google.protobuf.BytesValue');
    expect(toProto3Json(bytes, fromProto3Json(bytes, 'aGVsbG8=').message!)).toBe('aGVsbG8=');
    expect(fromProto3Json(bytes, 'not base64!').errors[0].message).toContain('base64');
  });
});

describe('refused resources (one per rule)', () => {
  it('misspelled field', () => {
    const rc = routeConfig();
    rc.virtual_host = rc.virtual_hosts;
    delete rc.virtual_hosts;
    expectViolation(rc, 'virtual_host', 'unknown field "virtual_host" in envoy.config.route.v3.RouteConfiguration (did you mean "virtual_hosts"?)');
  });

  it('misspelled field deep inside an Any payload', () => {
    const l = listener();
    (l.filter_chains as any)[0].filters[0].typed_config.http_filter = [];
    expectViolation(l, 'filter_chains[0].filters[0].typed_config.http_filter', 'unknown field');
  });

  it('two members of one oneof', () => {
    const rc = routeConfig();
    const route = (rc.virtual_hosts as any)[0].routes[0].route;
    route.weighted_clusters = { clusters: [{ name: 'a', weight: 1 }] };
    expectViolation(rc, 'virtual_hosts[0].routes[0].route.weighted_clusters', 'oneof "cluster_specifier"');
  });

  it('missing required oneof: Route without an action', () => {
    const rc = routeConfig();
    delete (rc.virtual_hosts as any)[0].routes[2].route;
    expectViolation(rc, 'virtual_hosts[0].routes[2].action', 'is required');
  });

  it('missing required message: Route without match', () => {
    const rc = routeConfig();
    delete (rc.virtual_hosts as any)[0].routes[0].match;
    expectViolation(rc, 'virtual_hosts[0].routes[0].match', 'value is required');
  });

  it('duration out of range, malformed, or below a PGV bound', () => {
    const rc = routeConfig();
    (rc.virtual_hosts as any)[0].routes[0].route.timeout = '315576000001s';
    expectViolation(rc, 'virtual_hosts[0].routes[0].route.timeout', 'out of range');
    (rc.virtual_hosts as any)[0].routes[0].route.timeout = '500ms';
    expectViolation(rc, 'virtual_hosts[0].routes[0].route.timeout', 'invalid duration');
    const c = edsCluster();
    c.connect_timeout = '0s';
    expectViolation(c, 'connect_timeout', 'must be > 0s');
  });

  it('regex that JS accepts but RE2 rejects', () => {
    expect(() => new RegExp('^/api(?=/v1)')).not.toThrow();
    const rc = routeConfig();
    (rc.virtual_hosts as any)[0].routes[1].match.safe_regex.regex = '^/api(?=/v1)';
    expectViolation(rc, 'virtual_hosts[0].routes[1].match.safe_regex.regex', 'not a valid RE2 regex');
  });

  it('unknown enum name, and undefined enum number under defined_only', () => {
    const c = edsCluster();
    c.lb_policy = 'ROUND_ROBBIN';
    expectViolation(c, 'lb_policy', 'unknown value "ROUND_ROBBIN"');
    c.lb_policy = 42;
    expectViolation(c, 'lb_policy', '42 is not a defined value of enum envoy.config.cluster.v3.Cluster.LbPolicy');
  });

  it('empty string under min_len (HCM stat_prefix inside typed_config)', () => {
    const l = listener();
    (l.filter_chains as any)[0].filters[0].typed_config.stat_prefix = '';
    expectViolation(l, 'filter_chains[0].filters[0].typed_config.stat_prefix', 'at least 1 character');
  });

  it('wrong JSON types', () => {
    const c = edsCluster();
    c.outlier_detection = { consecutive_5xx: 'five' };
    expectViolation(c, 'outlier_detection.consecutive_5xx', 'expected an integer');
    const rc = routeConfig();
    (rc.virtual_hosts as any)[0].domains = 'reviews';
    expectViolation(rc, 'virtual_hosts[0].domains', 'expected a JSON array');
  });

  it('numeric range rules (uint32 lte, http status range)', () => {
    const c = edsCluster();
    (c.outlier_detection as any).max_ejection_percent = 150;
    expectViolation(c, 'outlier_detection.max_ejection_percent', '<= 100');
    const rc = routeConfig();
    (rc.virtual_hosts as any)[1].typed_per_filter_config['envoy.filters.http.fault'].abort.http_status = 700;
    expectViolation(rc, 'virtual_hosts[1].typed_per_filter_config["envoy.filters.http.fault"].abort.http_status', '< 600');
  });

  it('repeated min_items, map key min_len', () => {
    const rc = routeConfig();
    (rc.virtual_hosts as any)[2].domains = [];
    expectViolation(rc, 'virtual_hosts[2].domains', 'at least 1 item');
    const c = edsCluster();
    (c.metadata as any).filter_metadata[''] = {};
    expectViolation(c, 'metadata.filter_metadata[""]', 'key must be at least 1 character');
  });

  it('HTTP header name/value character checks (strict and non-strict)', () => {
    const rc = routeConfig();
    (rc.virtual_hosts as any)[0].routes[1].request_headers_to_add[0].header.value = 'a\nb';
    expectViolation(rc, 'virtual_hosts[0].routes[1].request_headers_to_add[0].header.value', 'valid HTTP header value');
    const c = edsCluster();
    (c.typed_extension_protocol_options as any)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']
      .upstream_http_protocol_options = { auto_sni: true, override_auto_sni_header: 'x sni' };
    expectViolation(c,
      'typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].upstream_http_protocol_options.override_auto_sni_header',
      'valid HTTP header name');
    (c.typed_extension_protocol_options as any)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']
      .upstream_http_protocol_options.override_auto_sni_header = ':authority';
    expect(checkResource(c)).toEqual([]);
  });

  it('weighted clusters whose weights sum to 0', () => {
    const rc = routeConfig();
    for (const c of (rc.virtual_hosts as any)[0].routes[1].route.weighted_clusters.clusters) c.weight = 0;
    expectViolation(rc, 'virtual_hosts[0].routes[1].route.weighted_clusters.clusters', 'greater than 0');
  });

  it('router filter not last, missing, or a duplicate filter name', () => {
    const l = listener();
    const hcmJson = (l.filter_chains as any)[0].filters[0].typed_config;
    hcmJson.http_filters = [routerFilter, faultFilter];
    expectViolation(l, 'filter_chains[0].filters[0].typed_config.http_filters[0]', 'must be the last HTTP filter');
    hcmJson.http_filters = [faultFilter];
    expectViolation(l, 'filter_chains[0].filters[0].typed_config.http_filters', 'must be present and last');
    hcmJson.http_filters = [faultFilter, faultFilter, routerFilter];
    expectViolation(l, 'filter_chains[0].filters[0].typed_config.http_filters[1].name', 'duplicate HTTP filter name');
    const api = apiListener();
    (api.api_listener as any).api_listener.http_filters = [routerFilter, faultFilter];
    expectViolation(api, 'api_listener.api_listener.http_filters[0]', 'must be the last');
  });

  it('duplicate domain across virtual hosts, second wildcard, duplicate vhost name', () => {
    const rc = routeConfig();
    (rc.virtual_hosts as any)[1].domains.push('Reviews');
    expectViolation(rc, 'virtual_hosts[1].domains[2]', 'duplicate domain "Reviews"');
    const rc2 = routeConfig();
    (rc2.virtual_hosts as any)[1].domains = ['*'];
    expectViolation(rc2, 'virtual_hosts[2].domains[0]', 'only one wildcard');
    const rc3 = routeConfig();
    (rc3.virtual_hosts as any)[2].name = (rc3.virtual_hosts as any)[0].name;
    expectViolation(rc3, 'virtual_hosts[2].name', 'duplicate virtual host name');
  });

  it('unknown Any @type, and unknown resource @type', () => {
    const l = listener();
    (l.filter_chains as any)[0].filters[0].typed_config['@type'] = `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManagr`;
    expectViolation(l, 'filter_chains[0].filters[0].typed_config.@type', 'unknown Any type');
    expectViolation({ '@type': `${T}envoy.config.cluster.v3.Clusterr`, name: 'x' }, '@type', 'unknown resource type');
  });

  it('priority gap in a ClusterLoadAssignment', () => {
    const c = cla();
    (c.endpoints as any)[2].priority = 2;
    expectViolation(c, 'endpoints', 'missing priority 1');
  });

  it('local rate limit fill_interval below 50ms', () => {
    const l = listener();
    (l.filter_chains as any)[0].filters[0].typed_config.http_filters[1].typed_config.token_bucket.fill_interval = '0.010s';
    expectViolation(l, 'filter_chains[0].filters[0].typed_config.http_filters[1].typed_config.token_bucket.fill_interval', '>= 50ms');
  });

  it('EDS cluster without eds_cluster_config; cluster without a name', () => {
    const c = edsCluster();
    delete c.eds_cluster_config;
    expectViolation(c, 'eds_cluster_config', 'EDS cluster needs eds_cluster_config');
    const c2 = edsCluster();
    delete c2.name;
    expectViolation(c2, 'name', 'non-empty');
  });

  it('duplicate filter chain names and overlapping filter chain matches', () => {
    const l = listener();
    (l.filter_chains as any)[1].name = 'http';
    expectViolation(l, 'filter_chains[1].name', 'duplicate filter chain name');
    const l2 = listener();
    (l2.filter_chains as any)[1].filter_chain_match = { application_protocols: ['h2c'] };
    expectViolation(l2, 'filter_chains[1].filter_chain_match', 'same matching rules');
  });

  it('deprecated field disallowed by default (rate limit action dynamic_metadata)', () => {
    const rc = routeConfig();
    (rc.virtual_hosts as any)[0].routes[2].route.rate_limits = [{
      actions: [{ dynamic_metadata: { descriptor_key: 'k', metadata_key: { key: 'a', path: [{ key: 'b' }] } } }],
    }];
    expectViolation(rc, 'virtual_hosts[0].routes[2].route.rate_limits[0].actions[0].dynamic_metadata', 'disallowed by default');
  });

  it('encodeResource lists every violation with its path', () => {
    const rc = routeConfig();
    (rc.virtual_hosts as any)[0].domains = [];
    (rc.virtual_hosts as any)[1].routes[0].route.timeout = '-1s';
    try {
      encodeResource(rc);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ResourceCheckError);
      const err = e as ResourceCheckError;
      expect(err.violations.map((v) => v.path)).toEqual(expect.arrayContaining(['virtual_hosts[0].domains']));
      expect(err.message).toContain('virtual_hosts[0].domains: must have at least 1 item');
      expect(err.message).toContain(TYPE_URL.route);
    }
  });
});

describe('checkAndEncode', () => {
  it('gives what checkResource and encodeResource give, in one parse', async () => {
    const { checkAndEncode } = await import('../control-plane/envoy/check.ts');
    const { loadDirectory } = await import('../control-plane/config/load.ts');
    const { compile } = await import('../control-plane/model/compile.ts');
    const { proxyFromNode } = await import('../control-plane/translate/proxy.ts');
    const { translate } = await import('../control-plane/translate/translate.ts');
    const model = compile(loadDirectory('examples/bookinfo')).model;
    const out = translate(model, proxyFromNode({ id: 'sidecar~10.9.9.9~pp-1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } }));
    const all = Object.values(out).flat();
    expect(all.length).toBeGreaterThan(10);
    for (const r of all) {
      const both = checkAndEncode(r);
      expect('any' in both && both.any).toEqual(encodeResource(r));
    }
    const bad = { ...all[0]!, conect_timeout: '1s' };
    const refused = checkAndEncode(bad);
    expect('violations' in refused && refused.violations).toEqual(checkResource(bad));
  });
});
