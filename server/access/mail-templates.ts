import { escapeHtml, type MailMessage } from '../mail/index.js';

/**
 * The one account mail that the shared templates (mail/templates.ts) do not
 * have: the notice to the owner of an address someone tried to register
 * again. Every value put into HTML is escaped.
 */
export function alreadyRegisteredMail(to: string, name: string, loginLink: string, resetLink: string): MailMessage {
  const paragraphs: (string | { link: string })[] = [
    name ? `Hello ${name.replace(/\p{Cc}/gu, ' ')},` : 'Hello,',
    'Someone tried to register a new Slidebank account with this address, which already has one. Nothing was changed.',
    'If it was you, log in here:',
    { link: loginLink },
    'or, if you have forgotten your password, choose a new one here:',
    { link: resetLink },
    'If it was not you, you need not do anything.',
  ];
  const text = paragraphs.map((p) => (typeof p === 'string' ? p : p.link)).join('\n\n');
  const html = paragraphs
    .map((p) => (typeof p === 'string' ? `<p>${escapeHtml(p)}</p>` : `<p><a href="${escapeHtml(p.link)}">${escapeHtml(p.link)}</a></p>`))
    .join('\n');
  return { to, subject: 'You already have a Slidebank account', text: `${text}\n`, html: `<!doctype html>\n<html><body>\n${html}\n</body></html>\n` };
}
