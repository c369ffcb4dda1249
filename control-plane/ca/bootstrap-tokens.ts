// File-mode authentication: bootstrap tokens the operator hands out, one per line,
//   <token> <namespace> <serviceAccount>
// ('#' starts a comment). The file is checked on each request (one stat) and re-read when it
// changed, so adding or revoking a token needs no restart. Tokens are kept only as SHA-256
// digests, looked up by digest: the lookup's timing says nothing about a token's characters.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from '../log.ts';
import { identityProblem, type Identity } from './identity.ts';

export interface TokenAuthenticator {
  readonly name: string;
  /** The token's identity, or undefined when this authenticator does not accept it. Throws when it cannot tell. */
  authenticate(token: string): Promise<Identity | undefined>;
}

const digest = (token: string) => createHash('sha256').update(token).digest('base64');

export class BootstrapTokens implements TokenAuthenticator {
  readonly name = 'bootstrap-token';
  private tokens = new Map<string, Identity>();
  private stamp = '';

  constructor(
    readonly file: string,
    private readonly trustDomain: string,
    private readonly log: Logger,
  ) {
    this.refresh();
  }

  async authenticate(token: string): Promise<Identity | undefined> {
    this.refresh();
    return this.tokens.get(digest(token));
  }

  get size(): number {
    return this.tokens.size;
  }

  private refresh(): void {
    let stamp: string;
    try {
      const s = statSync(this.file);
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
      if (stamp === this.stamp) return;
      if (s.mode & 0o077) this.log.warn({ file: this.file }, 'CA token file is readable by group or others');
    } catch (e) {
      // A missing file means no tokens (fail closed), not the tokens of the last read.
      if (this.stamp !== 'missing') this.log.warn({ file: this.file, err: (e as Error).message }, 'CA token file cannot be read: no bootstrap token is accepted');
      this.stamp = 'missing';
      this.tokens = new Map();
      return;
    }
    const next = new Map<string, Identity>();
    readFileSync(this.file, 'utf8').split('\n').forEach((line, i) => {
      const text = line.replace(/#.*/, '').trim();
      if (!text) return;
      const [token, namespace, serviceAccount, ...rest] = text.split(/\s+/);
      const id = { trustDomain: this.trustDomain, namespace: namespace ?? '', serviceAccount: serviceAccount ?? '' };
      const problem = rest.length || !serviceAccount ? 'expected "token namespace serviceAccount"' : identityProblem(id);
      if (problem) this.log.warn({ file: this.file, line: i + 1 }, `CA token file: line skipped: ${problem}`);
      else next.set(digest(token!), id);
    });
    this.tokens = next;
    this.stamp = stamp;
    this.log.info({ file: this.file, tokens: next.size }, 'CA bootstrap tokens loaded');
  }
}
