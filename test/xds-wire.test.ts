// The hand decoder for plain DiscoveryRequests must read exactly what protobufjs reads, and leave
// anything else (node, error_detail) to it.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PROTO_INCLUDE_DIRS } from '../control-plane/envoy/protos.ts';
import { PlainDiscoveryRequest } from '../control-plane/xds/wire.ts';

const def = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [...PROTO_INCLUDE_DIRS] });
const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: { service: grpc.ServiceDefinition } } } } } };
const method = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service.StreamAggregatedResources;

describe('PlainDiscoveryRequest', () => {
  it('agrees with protobufjs on ACKs and subscription changes', () => {
    const text = fc.string({ unit: 'binary', maxLength: 80 });
    fc.assert(
      fc.property(fc.record({ version_info: text, resource_names: fc.array(text, { maxLength: 120 }), type_url: text, response_nonce: text }, { requiredKeys: [] }), (req) => {
        const bytes = method.requestSerialize(req);
        const ours = PlainDiscoveryRequest.decode(bytes)!;
        const theirs = method.requestDeserialize(bytes) as Record<string, unknown>;
        const names = (theirs.resource_names ?? []) as string[];
        expect({ version_info: ours.version_info, resource_names: ours.resource_names, type_url: ours.type_url, response_nonce: ours.response_nonce }).toEqual({ version_info: theirs.version_info ?? '', resource_names: names, type_url: theirs.type_url ?? '', response_nonce: theirs.response_nonce ?? '' });
        // The names' bytes are exactly those of a request carrying only the names.
        expect(ours.names_bytes ?? Buffer.alloc(0)).toEqual(method.requestSerialize({ resource_names: names }));
      }),
    );
  });

  it('leaves requests with a node or an error to protobufjs', () => {
    expect(PlainDiscoveryRequest.decode(method.requestSerialize({ node: { id: 'x' }, type_url: 't' }))).toBeUndefined();
    expect(PlainDiscoveryRequest.decode(method.requestSerialize({ response_nonce: 'n', error_detail: { code: 3, message: 'bad' } }))).toBeUndefined();
  });
});
