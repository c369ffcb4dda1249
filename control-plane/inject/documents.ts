// `meshpilot inject -f FILE`: YAML documents in, the same documents out with pods injected. A
// Namespace in the same input supplies its labels; other namespaces get opts.namespaceLabels.
// Errors name the file, line and field path.
import { isNode, LineCounter, parseAllDocuments, stringify } from 'yaml';
import { InjectionInputError } from './annotations.ts';
import type { InjectionConfig } from './config.ts';
import { injectObject, type ObjectReport, type WorkloadOptions } from './workloads.ts';

export interface DocumentsResult {
  output: string;
  reports: ObjectReport[];
}

export function injectYaml(file: string, text: string, opts: WorkloadOptions, config: InjectionConfig): DocumentsResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter });
  if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
  const out: string[] = [];
  const reports: ObjectReport[] = [];
  const fromFile = new Map<string, Record<string, string>>();
  for (const doc of docs) {
    const v = doc.toJS() as { kind?: unknown; metadata?: { name?: unknown; labels?: Record<string, string> } } | null;
    if (v?.kind === 'Namespace' && typeof v.metadata?.name === 'string') fromFile.set(v.metadata.name, v.metadata.labels ?? {});
  }
  const docOpts: WorkloadOptions = { ...opts, namespaceLabels: (ns) => fromFile.get(ns) ?? opts.namespaceLabels(ns) };
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      const { line, col } = lineCounter.linePos(doc.errors[0]!.pos[0]);
      throw new Error(`${file}:${line}:${col}: ${doc.errors[0]!.message.split('\n')[0]}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    try {
      const r = injectObject(value, docOpts, config);
      reports.push(...r.reports);
      out.push(stringify(r.object, { lineWidth: 0, aliasDuplicateObjects: false }));
    } catch (e) {
      if (!(e instanceof InjectionInputError)) throw e;
      // Point at the deepest node that exists on the path.
      let node: unknown;
      for (let n = e.fieldPath.length; n >= 0 && !isNode(node); n--) node = doc.getIn(e.fieldPath.slice(0, n), true);
      const at = isNode(node) && node.range ? lineCounter.linePos(node.range[0]) : { line: 1, col: 1 };
      throw new Error(`${file}:${at.line}:${at.col} ${e.message}`);
    }
  }
  return { output: out.join('---\n'), reports };
}
