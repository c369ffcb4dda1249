// meshpilot's version: the "version" of its package.json, found at run time by searching upward
// from this module, so it holds whether the CLI runs from the sources (control-plane/) or from a
// compiled copy one or more levels deeper (dist/control-plane/).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_NAME = 'meshpilot';

/** The version of the nearest package.json named `name` at or above `from`; undefined if none. */
export function findPackageVersion(from: string, name = PACKAGE_NAME): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === name && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no (readable) package.json here: keep looking
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

export function meshpilotVersion(): string {
  return findPackageVersion(path.dirname(fileURLToPath(import.meta.url))) ?? 'unknown';
}
