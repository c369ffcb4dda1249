// `npm run crds`: writes examples/kubernetes/install/base/crds.yaml (a test checks it is up to date).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { crdsYaml } from './crds.ts';

const target = fileURLToPath(new URL('../../examples/kubernetes/install/base/crds.yaml', import.meta.url));
writeFileSync(target, crdsYaml());
console.log(`wrote ${target}`);
