// TLS credentials from a directory (`serve --credentials-dir DIR`), for file mode:
// DIR/<namespace>/<name>/ holds `tls.crt` and `tls.key` (or `cert` and `key`) and optionally
// `ca.crt` (or `cacert`), the layout of a mounted kubernetes.io/tls Secret, one directory per
// credential. Read again every second (small files; a rename-in-place, as Kubernetes does for
// mounted Secrets, is seen like any write); unchanged content changes nothing.
import fs from 'node:fs';
import path from 'node:path';
import type { ComponentHealth } from '../observe/health.ts';
import type { CredentialStore } from './credential-store.ts';
import { isTlsCredential, type CredentialInput } from './secret-resources.ts';

const FILES = ['tls.crt', 'tls.key', 'ca.crt', 'cert', 'key', 'cacert'];
/** Kubernetes names: what can be a namespace or Secret name (anything else in DIR is skipped). */
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function dirs(p: string): string[] {
  try {
    return fs.readdirSync(p, { withFileTypes: true }).filter((d) => (d.isDirectory() || d.isSymbolicLink()) && NAME.test(d.name)).map((d) => d.name).sort();
  } catch {
    return [];
  }
}

/** Every credential under `dir` now. */
export function readCredentialsDir(dir: string): CredentialInput[] {
  const out: CredentialInput[] = [];
  for (const namespace of dirs(dir)) {
    for (const name of dirs(path.join(dir, namespace))) {
      const data: Record<string, string> = {};
      for (const f of FILES) {
        try {
          data[f] = fs.readFileSync(path.join(dir, namespace, name, f), 'utf8');
        } catch {
          // absent: fine
        }
      }
      if (isTlsCredential(data)) out.push({ namespace, name, data });
    }
  }
  return out;
}

export class FileCredentials {
  private timer: NodeJS.Timeout | undefined;
  private last = '';
  private error: string | undefined;

  constructor(private readonly dir: string, private readonly store: CredentialStore, private readonly intervalMs = 1000) {}

  start(): void {
    this.read();
    this.timer = setInterval(() => this.read(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private read(): void {
    try {
      fs.accessSync(this.dir, fs.constants.R_OK);
      this.error = undefined;
    } catch (e) {
      this.error = `cannot read ${this.dir}: ${(e as Error).message}`;
      return; // keep what was read before: a directory briefly gone must not drop every certificate
    }
    const inputs = readCredentialsDir(this.dir);
    const text = JSON.stringify(inputs);
    if (text === this.last) return;
    this.last = text;
    this.store.set('files', inputs);
  }

  health(): ComponentHealth {
    return { name: 'credentials/files', ready: true, healthy: !this.error, detail: this.error ?? `reading ${this.dir}` };
  }
}
