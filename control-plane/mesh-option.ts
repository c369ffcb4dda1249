// `--mesh-config FILE` on the commands that compile rules: the mesh settings they run with are
// Istio's defaults, then the file (config/mesh-config.ts, loaded only when the flag is given), then
// --trust-domain / --root-namespace when typed on the command line (their defaults do not count).
import type { Command } from 'commander';
import { DEFAULT_MESH, type MeshSettings } from './model/mesh-identity.ts';

export const MESH_CONFIG_FLAG = '--mesh-config <file>';
export const MESH_CONFIG_HELP = "Istio MeshConfig YAML (the istio ConfigMap's `mesh` key): trustDomain, rootNamespace, outboundTrafficPolicy, localityLbSetting (the default under every DestinationRule's), extensionProviders (ext_authz); other fields are ignored. --trust-domain and --root-namespace win over it. Read at start";

export interface MeshFlags { meshConfig?: string; trustDomain?: string; rootNamespace?: string }

/** The mesh settings; throws an Error with positioned lines when the file is bad. */
export async function meshFromFlags(o: MeshFlags, cmd: Command, warn: (line: string) => void): Promise<MeshSettings> {
  const typed = (name: 'trustDomain' | 'rootNamespace') => o[name] !== undefined && ['cli', 'env'].includes(cmd.getOptionValueSource(name) ?? '');
  const explicit: Partial<MeshSettings> = {
    ...(typed('trustDomain') ? { trustDomain: o.trustDomain! } : {}),
    ...(typed('rootNamespace') ? { rootNamespace: o.rootNamespace! } : {}),
  };
  if (!o.meshConfig) return { ...DEFAULT_MESH, ...(o.trustDomain ? { trustDomain: o.trustDomain } : {}), ...(o.rootNamespace ? { rootNamespace: o.rootNamespace } : {}) };
  const { meshSettings } = await import('./config/mesh-config.ts');
  return meshSettings(DEFAULT_MESH, o.meshConfig, explicit, warn);
}
