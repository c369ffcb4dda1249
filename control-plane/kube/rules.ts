// Rule objects (our CRDs) of the config cluster -> validated ConfigObjects, with last-good
// semantics like the file source: an invalid new version of an object keeps its previous valid
// version in force (and says so), a deleted object is gone.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ParsedDocument } from '../config/load.ts';
import type { ConfigError, ConfigObject } from '../config/types.ts';
import type { KubeCluster } from './cluster.ts';
import { ruleDocument, sourceName, validateDocument, type KubeRuleObject } from './objects.ts';
import type { RuleResource } from './rule-resources.ts';

export interface RuleEntry {
  resource: RuleResource;
  object: KubeRuleObject;
  /** `k8s://<cluster>/<Kind>/<ns>/<name>`: the `file` of its ConfigObject and errors. */
  file: string;
}

/** Memoizes validation by document text, so unchanged objects keep their ConfigObject identity. */
export class DocumentMemo {
  private current = new Map<string, ParsedDocument>();
  private next = new Map<string, ParsedDocument>();

  parse(file: string, doc: Record<string, unknown>): ParsedDocument {
    const k = `${file}\n${JSON.stringify(doc)}`;
    const hit = this.current.get(k) ?? this.next.get(k) ?? validateDocument(file, doc);
    this.next.set(k, hit);
    return hit;
  }

  /** Forgets documents not parsed since the last call. */
  sweep(): void {
    this.current = this.next;
    this.next = new Map();
  }
}

export class RuleObjects {
  private readonly memo = new DocumentMemo();
  private lastValid = new Map<string, ConfigObject>();
  entries: RuleEntry[] = [];

  build(cluster: KubeCluster): { objects: ConfigObject[]; errors: ConfigError[] } {
    const objects: ConfigObject[] = [];
    const errors: ConfigError[] = [];
    const valid = new Map<string, ConfigObject>();
    this.entries = [];
    for (const [resource, watcher] of cluster.rules) {
      for (const o of watcher.list() as Array<KubernetesObject & KubeRuleObject>) {
        const name = o.metadata?.name ?? '';
        const file = sourceName(cluster.name, resource.kind, o.metadata?.namespace, name);
        this.entries.push({ resource, object: o, file });
        const parsed = this.memo.parse(file, ruleDocument(o, resource.kind));
        errors.push(...parsed.errors);
        const id = o.metadata?.uid ?? file;
        if (parsed.object) {
          objects.push(parsed.object);
          valid.set(id, parsed.object);
          continue;
        }
        const old = this.lastValid.get(id);
        if (!old) continue;
        objects.push(old);
        valid.set(id, old);
        errors.push({ ...parsed.source, path: '', message: 'invalid; its previous valid version stays in force', kind: old.kind, name: old.name, namespace: old.namespace });
      }
    }
    this.lastValid = valid;
    this.memo.sweep();
    return { objects, errors };
  }
}
