import type { Config } from '../config/index.js';

/**
 * The messages Slidebank sends, each rendered as plain text and as HTML from
 * one description, so that the two parts always say the same thing.
 *
 * A template is a list of blocks whose text is plain text: the template's own
 * words and the parameters alike. The HTML renderer escapes all of it, so no
 * parameter (a name, an institution, a rejection reason) can add markup, and
 * control characters in one-line parameters become spaces so that no
 * parameter can start a new line in a subject.
 */

/** Where the appliance is reached and which clock its dates are told in. */
export interface MailSite {
  /** `mail.publicUrl`; links start with it. */
  publicUrl: string;
  /** IANA time zone dates are shown in (`jobs.timeZone`, the zone the reminders run in). */
  timeZone: string;
}

export function mailSiteFrom(config: Pick<Config, 'mail' | 'jobs'>): MailSite {
  return { publicUrl: config.mail.publicUrl, timeZone: config.jobs.timeZone };
}

/**
 * Pages of the web UI that mails link to, under `mail.publicUrl` (the same as
 * the accounts service's LINK_PATHS). Tokens travel in the fragment
 * (`#token=…`), which browsers never send, so they reach no server or proxy log.
 */
export const MAIL_PATHS = {
  confirmEmail: '/account/confirm',
  resetPassword: '/account/reset-password',
  forgotPassword: '/account/forgot-password',
  dua: '/account/dua',
  adminAgreements: '/admin/dua',
  reports: '/account/reports',
  account: '/account',
} as const;

/** Each template's parameters. `name` may be empty (the greeting then has none). */
export interface MailTemplates {
  confirmEmail: { name: string; token: string; expiresAt: Date };
  resetPassword: { name: string; token: string; expiresAt: Date };
  /** After a password reset (`how: 'reset'`) or change: what was ended with the old password. */
  passwordChanged: { name: string; how: 'reset' | 'change'; at: Date; tokensRevoked: number };
  duaApproved: { name: string; expiresAt: Date };
  duaRejected: { name: string; reason: string };
  /** To each administrator when a researcher applies. */
  duaApplicationReceived: { name: string; applicant: string; project: string; principalInvestigator: string; version: string };
  duaRevoked: { name: string; reason: string };
  /** Sent 30 and 7 days ahead. */
  duaReminder: { name: string; expiresAt: Date; daysLeft: number };
  duaExpired: { name: string; expiredAt: Date };
  reportApproved: { name: string; expiresAt: Date };
  reportRejected: { name: string; reason: string };
  membershipReminder: { name: string; institution: string; expiresAt: Date; daysLeft: number };
  membershipExpired: { name: string; institution: string; expiredAt: Date };
}

export type MailTemplate = keyof MailTemplates;

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

type Block = { p: string } | { link: string; label: string } | { quote: string };

interface Draft {
  subject: string;
  name: string;
  blocks: Block[];
}

type Helpers = {
  link(path: string, token?: string): string;
  date(value: Date): string;
  dateTime(value: Date): string;
};

const DRAFTS: { [T in MailTemplate]: (params: MailTemplates[T], h: Helpers) => Draft } = {
  confirmEmail: ({ name, token, expiresAt }, h) => ({
    subject: 'Confirm your e-mail address for Slidebank',
    name,
    blocks: [
      { p: 'Someone, hopefully you, registered this address with Slidebank. Confirm it to browse the slide catalog and to apply for data access.' },
      { link: h.link(MAIL_PATHS.confirmEmail, token), label: 'Confirm my e-mail address' },
      { p: `The link works once, until ${h.dateTime(expiresAt)}. If you did not register, ignore this message and the account stays unconfirmed.` },
    ],
  }),
  resetPassword: ({ name, token, expiresAt }, h) => ({
    subject: 'Reset your Slidebank password',
    name,
    blocks: [
      { p: 'A new password was requested for your Slidebank account. Choose one here:' },
      { link: h.link(MAIL_PATHS.resetPassword, token), label: 'Choose a new password' },
      { p: `The link works once, until ${h.dateTime(expiresAt)}. If you did not ask for it, ignore this message: your password stays as it is.` },
    ],
  }),
  passwordChanged: ({ name, how, at, tokensRevoked }, h) => ({
    subject: 'Your Slidebank password was changed',
    name,
    blocks: [
      {
        p: `The password of your Slidebank account was ${how === 'reset' ? 'reset through a link mailed to this address' : 'changed'} on ${h.dateTime(at)}. ${
          how === 'reset' ? 'Every browser session of the account was logged out.' : 'Every other browser session of the account was logged out.'
        }`,
      },
      {
        p:
          tokensRevoked === 0
            ? 'The account had no personal access tokens in use.'
            : `Your ${tokensRevoked === 1 ? 'personal access token was' : `${tokensRevoked} personal access tokens were`} revoked; make new ones for your scripts on your account page.`,
      },
      { p: 'If this was not you, choose a new password at once and tell the Slidebank administrators:' },
      { link: h.link(MAIL_PATHS.forgotPassword), label: 'Choose a new password' },
    ],
  }),
  duaApproved: ({ name, expiresAt }, h) => ({
    subject: 'Your Slidebank data use agreement is approved',
    name,
    blocks: [
      { p: `Your data use agreement is approved: you can now download slides and annotations. It is valid until ${h.date(expiresAt)}.` },
      { p: 'To keep access after that, file your annual usage report before the date; an approved report renews the agreement for another year.' },
      { link: h.link(MAIL_PATHS.dua), label: 'See your agreement' },
    ],
  }),
  duaRejected: ({ name, reason }, h) => ({
    subject: 'Your Slidebank data use agreement was not approved',
    name,
    blocks: [
      { p: 'Your application for a data use agreement was not approved. The administrator gave this reason:' },
      { quote: reason },
      { p: 'You may apply again with the missing information.' },
      { link: h.link(MAIL_PATHS.dua), label: 'Apply again' },
    ],
  }),
  duaApplicationReceived: ({ name, applicant, project, principalInvestigator, version }, h) => ({
    subject: `New Slidebank data use agreement application from ${oneLine(applicant)}`,
    name,
    blocks: [
      { p: `${oneLine(applicant)} applied for a data use agreement under version ${oneLine(version)} of the agreement.` },
      { quote: `Project: ${project}\nPrincipal investigator: ${principalInvestigator}` },
      { p: 'The application waits for an administrator to approve or reject it.' },
      { link: h.link(MAIL_PATHS.adminAgreements), label: 'Decide on the application' },
    ],
  }),
  duaRevoked: ({ name, reason }, h) => ({
    subject: 'Your Slidebank data use agreement was revoked',
    name,
    blocks: [
      { p: 'An administrator revoked your data use agreement, so you can no longer download data. The administrator gave this reason:' },
      { quote: reason },
      { p: 'Under the agreement, stop using the data you downloaded and delete every copy. If you think this is a mistake, reply to the administrators.' },
      { link: h.link(MAIL_PATHS.dua), label: 'See your agreement' },
    ],
  }),
  duaReminder: ({ name, expiresAt, daysLeft }, h) => ({
    subject: `Your Slidebank data use agreement ends ${inDays(daysLeft)}`,
    name,
    blocks: [
      { p: `Your data use agreement ends on ${h.date(expiresAt)}. After that you can no longer download data.` },
      { p: 'File your annual usage report (what you used the data for, results, publications) to renew it for another year.' },
      { link: h.link(MAIL_PATHS.reports), label: 'File your usage report' },
    ],
  }),
  duaExpired: ({ name, expiredAt }, h) => ({
    subject: 'Your Slidebank data use agreement has expired',
    name,
    blocks: [
      {
        p: `Your data use agreement expired on ${h.date(expiredAt)} without an approved annual usage report, so your account is back at level L1: you can still browse the catalog and view slides, but downloads and the download rights of your access tokens have ended.`,
      },
      { p: 'To download again, file your usage report or apply for a new agreement.' },
      { link: h.link(MAIL_PATHS.dua), label: 'Renew your agreement' },
    ],
  }),
  reportApproved: ({ name, expiresAt }, h) => ({
    subject: 'Your Slidebank usage report is approved',
    name,
    blocks: [
      { p: `Thank you for your annual usage report. It is approved and your data use agreement is renewed until ${h.date(expiresAt)}.` },
      { link: h.link(MAIL_PATHS.dua), label: 'See your agreement' },
    ],
  }),
  reportRejected: ({ name, reason }, h) => ({
    subject: 'Your Slidebank usage report was not approved',
    name,
    blocks: [
      { p: 'Your annual usage report was not approved. The administrator gave this reason:' },
      { quote: reason },
      { p: 'Please file a corrected report before your agreement ends.' },
      { link: h.link(MAIL_PATHS.reports), label: 'File your usage report' },
    ],
  }),
  membershipReminder: ({ name, institution, expiresAt, daysLeft }, h) => ({
    subject: `Your Slidebank membership through ${oneLine(institution)} ends ${inDays(daysLeft)}`,
    name,
    blocks: [
      { p: `The institutional agreement of ${oneLine(institution)} ends on ${h.date(expiresAt)}. Your level L3 membership, and with it export bundles, ends with it unless the agreement is renewed.` },
      { p: 'Please ask your institution’s contact for Slidebank to renew the agreement.' },
      { link: h.link(MAIL_PATHS.account), label: 'See your account' },
    ],
  }),
  membershipExpired: ({ name, institution, expiredAt }, h) => ({
    subject: 'Your Slidebank membership has ended',
    name,
    blocks: [
      { p: `The institutional agreement of ${oneLine(institution)} ended on ${h.date(expiredAt)}, so your account is no longer a level L3 member and export bundles are closed to you.` },
      { p: 'Your own data use agreement, if you have one, still applies. Your institution can renew its agreement with the Slidebank administrators.' },
      { link: h.link(MAIL_PATHS.account), label: 'See your account' },
    ],
  }),
};

/** Render one message for `site`. Every parameter is plain text: it is escaped in the HTML part. */
export function renderMail<T extends MailTemplate>(template: T, params: MailTemplates[T], site: MailSite): RenderedMail {
  const base = site.publicUrl.replace(/\/+$/, '');
  const helpers: Helpers = {
    link: (pathname, token) => `${base}${pathname}${token === undefined ? '' : `#token=${encodeURIComponent(token)}`}`,
    date: (value) => formatDate(value, site.timeZone, false),
    dateTime: (value) => formatDate(value, site.timeZone, true),
  };
  const draft = (DRAFTS[template] as (params: MailTemplates[T], h: Helpers) => Draft)(params, helpers);
  const subject = oneLine(draft.subject);
  const greeting = oneLine(draft.name).trim() === '' ? 'Hello,' : `Hello ${oneLine(draft.name).trim()},`;
  const footer = `This message was sent by Slidebank at ${base}.`;
  return {
    subject,
    text: `${[greeting, ...draft.blocks.map(textBlock)].join('\n\n')}\n\n-- \n${footer}\n`,
    html: htmlDocument(subject, [`<p>${escapeHtml(greeting)}</p>`, ...draft.blocks.map(htmlBlock), `<p style="color:#666;font-size:90%">${escapeHtml(footer)}</p>`]),
  };
}

function textBlock(block: Block): string {
  if ('p' in block) return block.p;
  if ('link' in block) return `${block.label}:\n${block.link}`;
  return multiLine(block.quote)
    .split('\n')
    .map((line) => `> ${line}`)
    .join('\n');
}

function htmlBlock(block: Block): string {
  if ('p' in block) return `<p>${escapeHtml(block.p)}</p>`;
  if ('link' in block) {
    const href = escapeHtml(block.link);
    return `<p><a href="${href}" style="display:inline-block;padding:8px 16px;background:#1d4e89;color:#fff;text-decoration:none;border-radius:4px">${escapeHtml(block.label)}</a></p>\n<p style="font-size:90%">Or open this address: <a href="${href}">${href}</a></p>`;
  }
  const lines = multiLine(block.quote).split('\n').map(escapeHtml).join('<br>\n');
  return `<blockquote style="margin:0 0 1em;padding-left:1em;border-left:3px solid #ccc">${lines}</blockquote>`;
}

function htmlDocument(title: string, body: string[]): string {
  return [
    '<!DOCTYPE html>',
    '<html>',
    '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>' + escapeHtml(title) + '</title></head>',
    '<body style="font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;color:#222;max-width:600px">',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Control characters (line breaks included) become one space. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ');
}

/** Line breaks normalised to \n; other control characters dropped. */
function multiLine(text: string): string {
  return (
    text
      .replace(/\r\n?|[\u2028\u2029]/g, '\n')
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, '')
      .trim()
  );
}

function inDays(days: number): string {
  if (days <= 0) return 'today';
  if (days === 1) return 'tomorrow';
  return `in ${days} days`;
}

function formatDate(value: Date, timeZone: string, withTime: boolean): string {
  const format = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    ...(withTime ? { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' } : {}),
  } as Intl.DateTimeFormatOptions);
  return format.format(value);
}
