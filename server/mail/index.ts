export type { Mailer, MailMessage } from './mailer.js';
export { createMailer, MailDeliveryError, OutboxMailer, SmtpMailer } from './transport.js';
export {
  renderMail,
  mailSiteFrom,
  escapeHtml,
  MAIL_PATHS,
  type MailSite,
  type MailTemplate,
  type MailTemplates,
  type RenderedMail,
} from './templates.js';
