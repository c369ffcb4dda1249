#!/usr/bin/env node
// Runs the compiled CLI in dist/ (`npm run build`, also run by `npm ci` and before `npm test`):
// plain JavaScript, so nothing is compiled or cached at run time and a read-only file system will do.
// In a source checkout (control-plane/ present) it first makes sure dist/ is the build of these
// sources, and says so in one line rather than run an old build. The container image ships no
// sources, so there the check costs nothing.
// MESHPILOT_DEV=1 runs the TypeScript sources through tsx instead (a devDependency: checkouts only).
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Why dist/ is not the build of control-plane/, or undefined when it is (or there are no sources). */
function staleBuild() {
  const src = path.join(root, 'control-plane');
  let files;
  try {
    files = readdirSync(src, { recursive: true }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  } catch {
    return undefined; // no sources next to us: an installed copy, which is dist/ only
  }
  for (const f of files) {
    const out = path.join(root, 'dist', f.replace(/\.ts$/, '.js'));
    const built = statSync(out, { throwIfNoEntry: false });
    if (!built) return `dist/${f.replace(/\.ts$/, '.js').split(path.sep).join('/')} is missing (no build, or an old one)`;
    if (statSync(path.join(src, f)).mtimeMs > built.mtimeMs) return `control-plane/${f.split(path.sep).join('/')} changed after the last build`;
  }
  return undefined;
}

if (process.env.MESHPILOT_DEV === '1') {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../control-plane/cli.ts');
} else {
  const problem = staleBuild();
  if (problem) {
    process.stderr.write(`meshpilot: ${problem}: run \`npm run build\` (or MESHPILOT_DEV=1 to run the sources through tsx)\n`);
    process.exit(1);
  }
  await import('../dist/cli.js');
}
