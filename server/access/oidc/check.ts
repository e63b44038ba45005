import type { Logger } from '../../logging.js';
import { mapGroups } from '../directory/group-mapping.js';
import { OidcProviders, type OidcProviderSettings } from './oidc-providers.js';

export interface ProviderCheck {
  ok: boolean;
  lines: string[];
}

/**
 * `slidebank auth check-oidc NAME`: the provider's discovery document, its
 * signing keys, the address to register with it, and what the configured
 * mapping makes of some groups. Nothing secret is printed.
 */
export async function checkProvider(provider: OidcProviderSettings, publicUrl: string, log: Logger, groups: readonly string[]): Promise<ProviderCheck> {
  const providers = new OidcProviders([provider], publicUrl, log);
  const lines = [
    `provider:         ${provider.name} (“${provider.label}”)`,
    `issuer:           ${provider.issuer}`,
    `client id:        ${provider.clientId}${provider.clientSecret ? ' (with a client secret)' : ' (no client secret set)'}`,
    `redirect address: ${providers.redirectUri(provider.name)}  (register exactly this with the provider)`,
    `scopes:           ${provider.scopes.join(' ')}`,
  ];
  let ok = true;
  try {
    const metadata = (await providers.configuration(provider.name)).serverMetadata();
    lines.push(
      `discovery:        ok (${metadata.issuer})`,
      `authorization:    ${metadata.authorization_endpoint ?? '(none)'}`,
      `token:            ${metadata.token_endpoint ?? '(none)'}`,
      `end session:      ${metadata.end_session_endpoint ?? '(none: logging out ends the Slidebank session only)'}`,
    );
    if (!(metadata.code_challenge_methods_supported ?? []).includes('S256')) {
      lines.push('PKCE:             the provider does not announce S256; sign-in sends it anyway');
    }
    if (metadata.jwks_uri) {
      const response = await fetch(metadata.jwks_uri, { signal: AbortSignal.timeout(10_000) });
      const keys = response.ok ? ((await response.json()) as { keys?: { kid?: string; alg?: string; kty?: string; use?: string }[] }).keys ?? [] : [];
      const signing = keys.filter((key) => key.use === undefined || key.use === 'sig');
      lines.push(`keys:             ${response.ok ? `${signing.length} for signing: ${signing.map((key) => `${key.kid ?? '(no kid)'} ${key.alg ?? key.kty ?? ''}`.trim()).join(', ')}` : `HTTP ${response.status} from ${metadata.jwks_uri}`}`);
      ok &&= response.ok && signing.length > 0;
    } else {
      lines.push('keys:             (no jwks_uri: ID token signatures cannot be checked)');
      ok = false;
    }
  } catch (error) {
    lines.push(`discovery:        failed: ${(error as Error).message}`);
    ok = false;
  }
  lines.push(
    `groups claim:     ${provider.groupsClaim}`,
    `admin:            ${provider.roleGroups.admin.join('; ') || '(no group)'}`,
    `curator:          ${provider.roleGroups.curator.join('; ') || '(no group)'}`,
    `pathologist:      ${provider.roleGroups.pathologist.join('; ') || '(no group)'}`,
  );
  if (groups.length > 0) {
    const mapping = mapGroups(groups, provider.roleGroups, provider.institutionGroups);
    lines.push(`with groups ${groups.join(', ')}: roles ${mapping.roles.join(', ') || '(none)'}; institutions ${mapping.institutions.join(', ') || '(none)'}`);
  }
  return { ok, lines };
}
