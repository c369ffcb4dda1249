// PeerAuthentication: what the schema refuses (file:line:col and field path) and the mode each
// workload port ends up with under Istio's precedence (workload > namespace > mesh, port level
// first at each level, UNSET inherits, PERMISSIVE when nothing is set).
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config/load.ts';
import { formatError } from '../control-plane/config/types.ts';
import { compile, formatIssue } from '../control-plane/model/compile.ts';
import { effectiveMtls } from '../control-plane/model/peer-authentication.ts';
import type { Model } from '../control-plane/model/types.ts';

function pa(name: string, namespace: string, spec: string): string {
  return `apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
}

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints: [{ address: 10.0.0.1, labels: { app: reviews }, serviceAccount: reviews }]
---
`;

function modelOf(text: string): { model: Model; issues: string[] } {
  const state = compile(parseConfigText('pa.yaml', text));
  return { model: state.model, issues: [...state.errors.map((e) => `error: ${formatIssue(e)}`), ...state.warnings.map((w) => `warning: ${formatIssue(w)}`)] };
}

const modeOf = (m: Model, ns: string, labels: Record<string, string>, port: number) => effectiveMtls(m.peerAuthentications, m.mesh, ns, labels, port).mode;

describe('PeerAuthentication schema', () => {
  it('refuses unknown modes, fields and bad ports, at their positions', () => {
    const text = pa('bad', 'default', 'selector: { matchLabels: { app: reviews } }\nmtls: { mode: STRCT }\nportLevelMtls:\n  "0": { mode: STRICT }\n  "8080": { mode: DISABLE, extra: 1 }');
    const errors = parseConfigText('pa.yaml', text).errors.map(formatError);
    expect(errors).toEqual([
      'pa.yaml:6:17 spec.mtls.mode: must be one of UNSET, DISABLE, PERMISSIVE, STRICT (got "STRCT") (PeerAuthentication default/bad)',
      'pa.yaml:8:5 spec.portLevelMtls["0"]: "0" is not a port number from 1 to 65535 (PeerAuthentication default/bad)',
      'pa.yaml:9:30 spec.portLevelMtls["8080"].extra: field not supported by meshpilot (PeerAuthentication default/bad)',
    ]);
  });

  it('portLevelMtls needs a selector, as in Istio', () => {
    const errors = parseConfigText('pa.yaml', pa('ports', 'default', 'portLevelMtls: { "9080": { mode: DISABLE } }')).errors.map(formatError);
    expect(errors).toEqual([expect.stringContaining('spec.portLevelMtls: portLevelMtls needs a selector')]);
  });

  it('accepts security.istio.io v1 and v1beta1 and an empty spec', () => {
    expect(parseConfigText('pa.yaml', pa('empty', 'default', '{}')).errors).toEqual([]);
    expect(parseConfigText('pa.yaml', pa('v1', 'default', 'mtls: { mode: STRICT }').replace('v1beta1', 'v1')).errors).toEqual([]);
  });
});

describe('mTLS mode precedence', () => {
  it('is PERMISSIVE with no policy', () => {
    expect(modeOf(modelOf(SERVICE).model, 'default', { app: 'reviews' }, 9080)).toBe('PERMISSIVE');
  });

  it('workload > namespace > mesh; port level first; UNSET inherits', () => {
    const { model, issues } = modelOf(
      SERVICE +
        pa('mesh', 'istio-system', 'mtls: { mode: STRICT }') +
        pa('ns', 'default', 'mtls: { mode: DISABLE }') +
        pa('wl', 'default', 'selector: { matchLabels: { app: reviews } }\nmtls: { mode: UNSET }\nportLevelMtls: { "9080": { mode: PERMISSIVE }, "9090": { mode: UNSET } }'),
    );
    expect(issues).toEqual([]);
    expect(modeOf(model, 'default', { app: 'reviews' }, 9080)).toBe('PERMISSIVE'); // port level
    expect(modeOf(model, 'default', { app: 'reviews' }, 9090)).toBe('DISABLE'); // port UNSET, workload UNSET -> namespace
    expect(modeOf(model, 'default', { app: 'ratings' }, 9080)).toBe('DISABLE'); // namespace
    expect(modeOf(model, 'other', { app: 'reviews' }, 9080)).toBe('STRICT'); // mesh
    expect(effectiveMtls(model.peerAuthentications, model.mesh, 'other', {}, 1).origin?.key).toBe('PeerAuthentication/istio-system/mesh');
  });

  it('the root namespace is an input (Istio default istio-system)', () => {
    const load = parseConfigText('pa.yaml', pa('mesh', 'meshpilot-system', 'mtls: { mode: STRICT }'));
    expect(modeOf(compile(load).model, 'default', {}, 80)).toBe('PERMISSIVE');
    const m = compile(load, [], undefined, { trustDomain: 'cluster.local', rootNamespace: 'meshpilot-system' }).model;
    expect(modeOf(m, 'default', {}, 80)).toBe('STRICT');
  });

  it('a second namespace-wide policy is ignored with a warning; a selector matching nothing is reported', () => {
    const { model, issues } = modelOf(SERVICE + pa('a', 'default', 'mtls: { mode: STRICT }') + pa('b', 'default', 'mtls: { mode: DISABLE }') + pa('c', 'default', 'selector: { matchLabels: { app: nope } }\nmtls: { mode: DISABLE }'));
    expect(modeOf(model, 'default', { app: 'reviews' }, 9080)).toBe('STRICT');
    expect(issues).toEqual([
      expect.stringContaining('spec: ignored: PeerAuthentication/default/a is already the namespace-wide (default) PeerAuthentication'),
      expect.stringContaining('spec.selector: selects no known workload in namespace default'),
    ]);
  });
});
