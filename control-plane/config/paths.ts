// Field paths: formatting them (`spec.http[0].match[0].uri`) and finding them in a parsed YAML
// document (line and column).
import { type Document, type LineCounter, isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { SourcePos } from './types.ts';

export type FieldPath = readonly (string | number)[];

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['spec','http',0,'headers','x-user']` -> `spec.http[0].headers["x-user"]` */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

type Range = readonly [number, number, number];
interface Ranged {
  range?: Range | null;
}

function start(node: unknown): number | undefined {
  const r = (node as Ranged | null | undefined)?.range;
  return r ? r[0] : undefined;
}

/**
 * Offset of `path` in `doc`. For a map entry whose value is a scalar, the value's offset; for any
 * other map entry (or with `atKey`), the key's offset; for a list item, the item's. A path that
 * does not exist resolves to its nearest existing ancestor. Aliases are followed.
 */
export function locateOffset(doc: Document, path: FieldPath, atKey = false): number {
  let node: unknown = doc.contents;
  let best = start(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyAt = start(pair.key);
      let value: unknown = pair.value;
      if (isAlias(value)) value = value.resolve(doc) ?? value;
      const valueAt = start(pair.value);
      const scalarValue = isScalar(value) && value.value !== null;
      best = (last && !atKey && scalarValue ? valueAt : keyAt) ?? best;
      node = value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item === undefined) break;
      best = start(item) ?? best;
      node = isAlias(item) ? item.resolve(doc) : item;
    } else {
      break;
    }
  }
  return best;
}

export function locate(doc: Document, lineCounter: LineCounter, file: string, path: FieldPath, atKey = false): SourcePos {
  const { line, col } = lineCounter.linePos(locateOffset(doc, path, atKey));
  return { file, line, col };
}
