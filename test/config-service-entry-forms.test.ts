// ServiceEntry and WorkloadEntry forms Istio accepts beyond the common ones, and the errors the
// malformed ones get (at the field), as Istio rejects them.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';

const we = (spec: string) => `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\nspec: ${spec}\n`;
const se = (spec: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n${spec}`;
const problems = (text: string) => parseConfigText('t.yaml', text).errors.map((e) => `${e.path}: ${e.message}`);

describe('ServiceEntry and WorkloadEntry forms', () => {
  it('accepts unix sockets, an address-less workload in a network, no ports, an empty selector, a partial wildcard, an IPv6 address ending in ::', () => {
    expect(problems(we('{address: "unix:///var/run/app.sock"}'))).toEqual([]);
    expect(problems(we('{address: "unix://@abstract"}'))).toEqual([]);
    expect(problems(we('{network: net1}'))).toEqual([]);
    expect(problems(se('  hosts: [example.com]\n  workloadSelector: {}\n'))).toEqual([]);
    expect(problems(se('  hosts: ["*x"]\n'))).toEqual([]);
    expect(problems(se('  hosts: [example.com]\n  addresses: [1.1.1.1/32]\n'))).toEqual([]);
    const r = parseConfigText('t.yaml', se('  hosts: [example.com]\n  addresses: [1.2.3.4, 2001:db8::]\n  resolution: STATIC\n  ports: [{number: 80, name: http}]\n  endpoints: [{address: "unix:///s.sock"}]\n'));
    expect(r.errors).toEqual([]);
    expect((r.objects[0]!.spec as { addresses: string[] }).addresses).toEqual(['1.2.3.4', '2001:db8::']);
  });

  it('rejects malformed unix sockets and the combinations Istio rejects, at the field', () => {
    expect(problems(we('{}'))).toEqual(['spec.address: required field is missing (it may be left out only when network is set)']);
    expect(problems(we('{address: "unix:///dir/"}'))).toEqual(['spec.address: unix socket path must name a socket, not a directory (got "unix:///dir/")']);
    expect(problems(we('{address: "unix://relative"}'))).toEqual(['spec.address: unix socket path must be absolute (unix:///path/to/socket) or abstract (unix://@name), got "unix://relative"']);
    expect(problems(we('{address: "unix://@"}'))).toEqual(['spec.address: an abstract unix socket needs a name after "@" (unix://@name)']);
    expect(problems(we('{address: "unix://@foo", ports: {http: 80}}'))).toEqual(['spec.ports: a unix domain socket endpoint has no ports']);
    const sock = '  endpoints: [{address: "unix:///path/to/socket"}]\n';
    expect(problems(se(`  hosts: [uds.example]\n  resolution: STATIC\n  ports: [{number: 1, name: a, protocol: GRPC}, {number: 2, name: b, protocol: HTTP}]\n${sock}`))).toEqual([
      'spec.ports: a ServiceEntry with unix domain socket endpoints takes one port (a socket has no ports to tell them apart)',
    ]);
    expect(problems(se(`  hosts: [uds.example]\n  resolution: DNS\n  ports: [{number: 1, name: a, protocol: HTTP}]\n${sock}`))).toEqual(['spec.endpoints[0].address: unix domain socket endpoints need resolution STATIC (got DNS)']);
    expect(problems(se('  hosts: [a.example]\n  resolution: DYNAMIC_DNS\n'))).toEqual(['spec.resolution: DYNAMIC_DNS needs an HTTP, HTTP2 or GRPC port (the host comes from the request); no ports are listed']);
    expect(problems(se('  hosts: ["x*"]\n'))).toEqual(['spec.hosts[0]: invalid host "x*": a wildcard may only be a leading "*."']);
  });
});
