import { readSimpleYaml } from '../control-plane/config/simple-yaml.ts';
import { parseAllDocuments } from 'yaml';
const text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: svc-0007, namespace: default }\nspec:\n  hosts: [svc-0007.default.svc.cluster.local]\n  http:\n  - name: split\n    route:\n    - { destination: { host: svc-0007.default.svc.cluster.local, subset: v1 }, weight: 90 }\n    - { destination: { host: svc-0007.default.svc.cluster.local, subset: v2 }, weight: 10 }\n";
const i = 856514496 % (text.length + 1);
const t = text.slice(0, i) + '-' + text.slice(i + 3);
console.log(JSON.stringify(t.slice(Math.max(0, i - 40), i + 40)));
console.log(JSON.stringify(readSimpleYaml(t)?.docs.map(d => d.value)));
const d = parseAllDocuments(t); console.log(JSON.stringify((d as any).map((x: any) => x.toJS())), (d as any).map((x: any) => [x.errors.map((e: any) => e.message), x.warnings.map((e: any) => e.message)]));
