// Rule files held in memory and parsed as the file source parses them: a file whose text did not
// change gives the very same objects again (what incremental builds key their memos on).
import { parseConfigText } from '../../control-plane/config/load.ts';
import type { LoadResult } from '../../control-plane/config/types.ts';

/** File name -> text; a missing (undefined) file is a deleted one. */
export type Files = Record<string, string | undefined>;

export class ParsedFiles {
  private parsed = new Map<string, { text: string; result: LoadResult }>();

  /** The load result of these files, in name order. */
  load(files: Files): LoadResult {
    const parts: LoadResult[] = [];
    for (const name of Object.keys(files).sort()) {
      const text = files[name];
      if (text === undefined) continue;
      let p = this.parsed.get(name);
      if (!p || p.text !== text) this.parsed.set(name, (p = { text, result: parseConfigText(name, text) }));
      parts.push(p.result);
    }
    return { objects: parts.flatMap((p) => p.objects), errors: parts.flatMap((p) => p.errors) };
  }
}
