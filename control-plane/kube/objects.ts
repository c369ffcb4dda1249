// Kubernetes objects -> meshpilot ConfigObjects through the very same validation files get: the
// object's envelope and spec are written out as a YAML document and parsed by config/load.ts, so
// errors carry the same field paths and messages. The document's "file" names the object
// (`k8s://<cluster>/<Kind>/<namespace>/<name>`); its line:col point into that rendering (valid
// documents take a faster path with the same verdict, see validateDocument).
import { stringify } from 'yaml';
import { parseConfigFile, type ParsedDocument } from '../config/load.ts';
import { documentSchemas } from '../config/schemas/document.ts';
import { KINDS, type ConfigObject, type Kind } from '../config/types.ts';
import { deepFreeze } from '../json.ts';

export interface KubeMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
}

export interface KubeRuleObject {
  apiVersion?: string;
  kind?: string;
  metadata?: KubeMeta;
  spec?: unknown;
  status?: unknown;
}

/** Annotations kubectl adds that say nothing about routing (and can be large). */
const DROPPED_ANNOTATIONS = new Set(['kubectl.kubernetes.io/last-applied-configuration']);

export function sourceName(cluster: string, kind: string, namespace: string | undefined, name: string): string {
  return `k8s://${cluster}/${kind}/${namespace ?? ''}/${name}`;
}

/** The part of a Kubernetes object meshpilot reads, as a plain document (status, uid... left out). */
export function ruleDocument(o: KubeRuleObject, kind: string): Record<string, unknown> {
  const m = o.metadata ?? {};
  const annotations = Object.fromEntries(Object.entries(m.annotations ?? {}).filter(([k]) => !DROPPED_ANNOTATIONS.has(k)));
  return {
    apiVersion: o.apiVersion,
    kind: o.kind ?? kind,
    metadata: {
      name: m.name,
      ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
      ...(m.labels && Object.keys(m.labels).length ? { labels: m.labels } : {}),
      ...(Object.keys(annotations).length ? { annotations } : {}),
    },
    ...(o.spec !== undefined ? { spec: o.spec } : {}),
  };
}

/**
 * Validates one document. Valid documents (nearly all) are checked by the zod schema directly,
 * without the YAML round trip, which costs 10-20x more; an invalid one goes through the file
 * parser so that its errors are exactly those a file would get.
 */
export function validateDocument(file: string, doc: Record<string, unknown>): ParsedDocument {
  const kind = doc['kind'];
  const meta = doc['metadata'] as { name?: unknown; namespace?: unknown; labels?: Record<string, string>; annotations?: Record<string, string> } | undefined;
  if (typeof kind !== 'string' || !(KINDS as readonly string[]).includes(kind) || typeof meta?.name !== 'string') return parseRuleDocument(file, doc);
  const result = documentSchemas[kind as Kind].safeParse(doc);
  if (!result.success) return parseRuleDocument(file, doc);
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default';
  const source = { file, line: 1, col: 1 };
  const object: ConfigObject = Object.freeze({
    kind: kind as Kind,
    apiVersion: result.data.apiVersion,
    name: meta.name,
    namespace,
    labels: deepFreeze({ ...(result.data.metadata.labels ?? {}) }),
    annotations: deepFreeze({ ...(result.data.metadata.annotations ?? {}) }),
    spec: deepFreeze(result.data.spec) as ConfigObject['spec'],
    key: `${kind}/${namespace}/${meta.name}`,
    source,
    // Positions inside a Kubernetes object mean little; the file names the object, errors carry the path.
    locate: () => source,
  });
  return { source, key: object.key, object, errors: [] };
}

/** Validates one document as if it were a file of its own. */
export function parseRuleDocument(file: string, doc: Record<string, unknown>): ParsedDocument {
  const text = stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
  const parsed = parseConfigFile(file, text);
  if (parsed.syntaxErrors.length > 0 || parsed.documents.length !== 1) {
    // Cannot happen for a document we rendered ourselves; reported rather than thrown.
    const errors = parsed.syntaxErrors.length ? parsed.syntaxErrors : [{ file, line: 1, col: 1, path: '', message: 'the object could not be rendered for validation' }];
    return { source: { file, line: 1, col: 1 }, errors };
  }
  return parsed.documents[0]!;
}
