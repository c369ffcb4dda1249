// `meshpilot inject -f FILE [-o OUT]`: offline injection, the same pods the webhook would produce.
// Without a cluster there are no namespace labels to read: a Namespace object in the input gives
// its own; any other namespace counts as opted in (the user asked for injection), while the
// pod's own opt-out, kube-system, host-network and already-injected pods are still honoured.
import fs from 'node:fs';
import { INJECT } from './annotations.ts';
import { loadInjectionConfig } from './config.ts';
import { injectYaml } from './documents.ts';

export interface InjectCommandOptions {
  file: string;
  output?: string;
  injectionConfig?: string;
  namespace: string;
  quiet?: boolean;
}

export function runInjectCommand(o: InjectCommandOptions): number {
  const config = loadInjectionConfig(o.injectionConfig);
  const name = o.file === '-' ? '<stdin>' : o.file;
  const text = fs.readFileSync(o.file === '-' ? 0 : o.file, 'utf8');
  const result = injectYaml(name, text, { defaultNamespace: o.namespace, namespaceLabels: () => ({ [INJECT]: 'enabled' }) }, config);
  if (o.output) fs.writeFileSync(o.output, result.output);
  else process.stdout.write(result.output);
  if (!o.quiet) {
    for (const r of result.reports) process.stderr.write(`${r.injected ? 'injected' : 'skipped'} ${r.object}: ${r.reason}\n`);
    process.stderr.write(`(offline: namespaces without a Namespace object in the input count as ${INJECT}=enabled)\n`);
  }
  return 0;
}
