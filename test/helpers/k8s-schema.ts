// Kubernetes schema check for tests: kubernetes-models' validators (types, required fields, enums)
// plus a check they lack, that every field name exists. Field names are read from the models'
// own type declarations (each interface's properties and the interfaces they refer to), so a
// misspelt field (`restartPolicies`, `readinesProbe`) in a generated pod fails a test.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Service } from 'kubernetes-models/v1/Service';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ReplicaSet } from 'kubernetes-models/apps/v1/ReplicaSet';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';

const require = createRequire(import.meta.url);
const MODELS = path.dirname(require.resolve('kubernetes-models/package.json'));

type ModelClass = new (data: never) => { validate(): void };
const KINDS: Record<string, { model: ModelClass; dts: string }> = {
  Pod: { model: Pod as unknown as ModelClass, dts: 'v1/Pod.d.ts' },
  Namespace: { model: Namespace as unknown as ModelClass, dts: 'v1/Namespace.d.ts' },
  Service: { model: Service as unknown as ModelClass, dts: 'v1/Service.d.ts' },
  Deployment: { model: Deployment as unknown as ModelClass, dts: 'apps/v1/Deployment.d.ts' },
  StatefulSet: { model: StatefulSet as unknown as ModelClass, dts: 'apps/v1/StatefulSet.d.ts' },
  DaemonSet: { model: DaemonSet as unknown as ModelClass, dts: 'apps/v1/DaemonSet.d.ts' },
  ReplicaSet: { model: ReplicaSet as unknown as ModelClass, dts: 'apps/v1/ReplicaSet.d.ts' },
  Job: { model: Job as unknown as ModelClass, dts: 'batch/v1/Job.d.ts' },
  CronJob: { model: CronJob as unknown as ModelClass, dts: 'batch/v1/CronJob.d.ts' },
  ConfigMap: { model: ConfigMap as unknown as ModelClass, dts: 'v1/ConfigMap.d.ts' },
  Secret: { model: Secret as unknown as ModelClass, dts: 'v1/Secret.d.ts' },
  ServiceAccount: { model: ServiceAccount as unknown as ModelClass, dts: 'v1/ServiceAccount.d.ts' },
  MutatingWebhookConfiguration: { model: MutatingWebhookConfiguration as unknown as ModelClass, dts: 'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration.d.ts' },
  ClusterRole: { model: ClusterRole as unknown as ModelClass, dts: 'rbac.authorization.k8s.io/v1/ClusterRole.d.ts' },
  ClusterRoleBinding: { model: ClusterRoleBinding as unknown as ModelClass, dts: 'rbac.authorization.k8s.io/v1/ClusterRoleBinding.d.ts' },
  Role: { model: Role as unknown as ModelClass, dts: 'rbac.authorization.k8s.io/v1/Role.d.ts' },
  RoleBinding: { model: RoleBinding as unknown as ModelClass, dts: 'rbac.authorization.k8s.io/v1/RoleBinding.d.ts' },
  PodDisruptionBudget: { model: PodDisruptionBudget as unknown as ModelClass, dts: 'policy/v1/PodDisruptionBudget.d.ts' },
  CustomResourceDefinition: { model: CustomResourceDefinition as unknown as ModelClass, dts: 'apiextensions.k8s.io/v1/CustomResourceDefinition.d.ts' },
};

// The packages' export maps hide their .d.ts files from require.resolve, so look on disk.
function packageFile(spec: string): string {
  for (const dir of [path.join(MODELS, 'node_modules'), path.dirname(MODELS)]) {
    if (fs.existsSync(path.join(dir, spec))) return path.join(dir, spec);
  }
  throw new Error(`cannot find ${spec} next to kubernetes-models`);
}

/** Property name -> the .d.ts file of its object type (undefined: a scalar or a free-form map). */
type Fields = Map<string, string | undefined>;
const cache = new Map<string, Fields>();

function fieldsOf(file: string): Fields {
  const hit = cache.get(file);
  if (hit) return hit;
  const text = fs.readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/import \{ (\w+)(?: as (\w+))? \} from "([^"]+)";/g)) {
    const spec = m[3]!;
    if (spec.endsWith('/base')) continue;
    const resolved = spec.startsWith('.') ? path.resolve(path.dirname(file), `${spec}.d.ts`) : packageFile(`${spec}.d.ts`);
    imports.set(m[2] ?? m[1]!, resolved);
  }
  const body = text.slice(text.indexOf('export interface'), text.indexOf('\n}', text.indexOf('export interface')));
  const fields: Fields = new Map();
  for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.+?);?$/gm)) {
    const type = m[2]!.replace(/^Array<(\w+)>$/, '$1');
    fields.set(m[1]!, imports.get(type));
  }
  cache.set(file, fields);
  return fields;
}

function unknownFields(value: unknown, file: string, at: string, out: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, file, `${at}[${i}]`, out));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  const fields = fieldsOf(file);
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) out.push(`${at ? `${at}.` : ''}${k}: unknown field`);
    else if (fields.get(k)) unknownFields(v, fields.get(k)!, `${at ? `${at}.` : ''}${k}`, out);
  }
}

/** Every problem with a Kubernetes object ([] when it is valid); unknown kinds are an error. */
export function kubernetesProblems(obj: { kind?: unknown }): string[] {
  const k = KINDS[String(obj.kind)];
  if (!k) return [`kind ${String(obj.kind)}: not covered by the schema check`];
  const out: string[] = [];
  try {
    new k.model(obj as never).validate();
  } catch (e) {
    out.push((e as Error).message);
  }
  unknownFields(obj, path.join(MODELS, k.dts), '', out);
  return out;
}
