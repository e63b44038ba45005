import type { Config } from '../config/index.js';
import { ensureSiteKey, siteIdentity, type SiteIdentity } from './site-key.js';

/** The site as partners see it: its name and the address its download URLs start with (site.publicUrl, else mail.publicUrl). */
export function siteOf(config: Config): { name: string; url: string } {
  return { name: config.site.name, url: config.site.publicUrl || config.mail.publicUrl };
}

/** The identity `GET /api/site` shows; the key is made on first use (boot makes it at first start). */
export function siteIdentityOf(config: Config): () => SiteIdentity {
  let identity: SiteIdentity | undefined;
  return () => {
    const site = siteOf(config);
    identity ??= siteIdentity({ name: site.name, publicUrl: site.url }, ensureSiteKey(config.paths.data));
    return identity;
  };
}
