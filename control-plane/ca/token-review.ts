// Kubernetes authentication: a service account token checked by the API server (TokenReview),
// bound to our audience. Projected tokens made for meshpilot carry it; a token made for anything
// else (another audience, the API server's default) is refused, so a token leaked from one
// service cannot be replayed here.
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { TokenAuthenticator } from './bootstrap-tokens.ts';
import { identityFromServiceAccountUser, type Identity } from './identity.ts';

export { DEFAULT_TOKEN_AUDIENCE } from './defaults.ts';

export class TokenReviewAuthenticator implements TokenAuthenticator {
  readonly name = 'kubernetes-token';
  private readonly api: AuthenticationV1Api;

  constructor(kubeConfig: KubeConfig, private readonly audience: string, private readonly trustDomain: string) {
    this.api = kubeConfig.makeApiClient(AuthenticationV1Api);
  }

  async authenticate(token: string): Promise<Identity | undefined> {
    const review = await this.api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [this.audience] } } });
    const s = review.status;
    // The API server answers with the audiences the token is valid for among those asked; an
    // answer without ours (an older server ignoring spec.audiences) is not good enough.
    if (!s?.authenticated || !s.audiences?.includes(this.audience)) return undefined;
    return identityFromServiceAccountUser(s.user?.username ?? '', this.trustDomain);
  }
}
