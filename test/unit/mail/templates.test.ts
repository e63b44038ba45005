import test from 'ava';
import { MAIL_PATHS, renderMail, type MailSite, type MailTemplate, type MailTemplates } from '../../../server/mail/index.js';
import { linksIn } from '../../support/smtp.js';

const site: MailSite = { publicUrl: 'https://slidebank.hospital.example/portal/', timeZone: 'Asia/Seoul' };
const expiresAt = new Date('2027-01-05T23:30:00Z');

/** One set of parameters per template: adding a template without an example here fails to compile. */
const EXAMPLES: { [T in MailTemplate]: MailTemplates[T] } = {
  confirmEmail: { name: 'Ji-woo Kim', token: 'tok/en+1=', expiresAt },
  resetPassword: { name: 'Ji-woo Kim', token: 'abc', expiresAt },
  passwordChanged: { name: 'Ji-woo Kim', how: 'reset', at: expiresAt, tokensRevoked: 3 },
  duaApproved: { name: 'Ji-woo Kim', expiresAt },
  duaRejected: { name: 'Ji-woo Kim', reason: 'The project description is missing.' },
  duaApplicationReceived: { name: 'Ji-woo Kim', applicant: 'Ada Researcher (ada@uni.example)', project: 'Liver segmentation', principalInvestigator: 'Prof. Example', version: '2' },
  duaRevoked: { name: 'Ji-woo Kim', reason: 'Data shared outside the project.' },
  duaReminder: { name: 'Ji-woo Kim', expiresAt, daysLeft: 30 },
  duaExpired: { name: 'Ji-woo Kim', expiredAt: expiresAt },
  reportApproved: { name: 'Ji-woo Kim', expiresAt },
  reportRejected: { name: 'Ji-woo Kim', reason: 'No publications listed.' },
  membershipReminder: { name: 'Ji-woo Kim', institution: 'Partner University', expiresAt, daysLeft: 7 },
  membershipExpired: { name: 'Ji-woo Kim', institution: 'Partner University', expiredAt: expiresAt },
};

for (const template of Object.keys(EXAMPLES) as MailTemplate[]) {
  test(`${template} renders a subject, a text part and an HTML part that say the same, with links under mail.publicUrl`, (t) => {
    const mail = renderMail(template, EXAMPLES[template] as never, site);
    t.regex(mail.subject, /Slidebank/);
    t.false(/[\r\n]/.test(mail.subject));
    t.true(mail.text.startsWith('Hello Ji-woo Kim,\n\n'));
    t.regex(mail.html, /^<!DOCTYPE html>/);
    t.regex(mail.html, /<p>Hello Ji-woo Kim,<\/p>/);
    const links = linksIn(mail.text);
    t.true(links.length >= 2, 'an action link and the footer');
    for (const link of links) t.true(link.startsWith('https://slidebank.hospital.example/portal'), link);
    for (const link of links.slice(0, -1)) t.true(mail.html.includes(`href="${link.replace(/&/g, '&amp;')}"`), `the HTML links ${link} too`);
    // Every sentence of the text part is in the HTML part.
    for (const paragraph of mail.text.split('\n\n').filter((p) => !p.includes('http') && !p.startsWith('>') && !p.startsWith('-- '))) {
      t.true(mail.html.includes(paragraph.replace(/'/g, '&#39;')), `HTML lacks: ${paragraph}`);
    }
  });
}

test('token links carry the token URL-encoded in the fragment, to the page named in MAIL_PATHS', (t) => {
  const mail = renderMail('confirmEmail', EXAMPLES.confirmEmail, site);
  const link = `https://slidebank.hospital.example/portal${MAIL_PATHS.confirmEmail}#token=tok%2Fen%2B1%3D`;
  t.true(linksIn(mail.text).includes(link));
  t.is(new URLSearchParams(new URL(link).hash.slice(1)).get('token'), 'tok/en+1=', 'the fragment never reaches a server log');
  t.true(mail.html.includes(`<a href="${link}"`));
  t.true(linksIn(renderMail('resetPassword', EXAMPLES.resetPassword, site).text).includes(`https://slidebank.hospital.example/portal${MAIL_PATHS.resetPassword}#token=abc`));
});

test('dates are told in the configured time zone', (t) => {
  t.regex(renderMail('duaApproved', EXAMPLES.duaApproved, site).text, /valid until 6 January 2027\./);
  t.regex(renderMail('duaApproved', EXAMPLES.duaApproved, { ...site, timeZone: 'UTC' }).text, /valid until 5 January 2027\./);
  t.regex(renderMail('resetPassword', EXAMPLES.resetPassword, site).text, /until 6 January 2027(?: at|,) 08:30 (?:GMT\+9|KST)/);
});

test('reminders say how many days are left in the subject', (t) => {
  t.is(renderMail('duaReminder', { ...EXAMPLES.duaReminder, daysLeft: 30 }, site).subject, 'Your Slidebank data use agreement ends in 30 days');
  t.is(renderMail('duaReminder', { ...EXAMPLES.duaReminder, daysLeft: 7 }, site).subject, 'Your Slidebank data use agreement ends in 7 days');
  t.is(renderMail('duaReminder', { ...EXAMPLES.duaReminder, daysLeft: 1 }, site).subject, 'Your Slidebank data use agreement ends tomorrow');
  t.is(renderMail('membershipReminder', EXAMPLES.membershipReminder, site).subject, 'Your Slidebank membership through Partner University ends in 7 days');
});

test('a hostile parameter is escaped in HTML and cannot add lines to the subject', (t) => {
  const hostile = `<script>alert("x")</script><img src=x onerror='steal()'> & co`;
  const mail = renderMail('duaRejected', { name: hostile, reason: `Bad <b>bold</b>\r\nsecond line "quoted"` }, site);
  t.false(mail.html.includes('<script'), 'no script element');
  t.false(mail.html.includes('<img'), 'no image element');
  t.false(mail.html.includes('<b>'), 'no markup from the reason');
  t.true(mail.html.includes('Hello &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=&#39;steal()&#39;&gt; &amp; co,'));
  t.true(mail.html.includes('Bad &lt;b&gt;bold&lt;/b&gt;<br>\nsecond line &quot;quoted&quot;'));
  t.true(mail.text.includes(`Hello ${hostile},`), 'the text part shows the name as written');
  t.true(mail.text.includes('> Bad <b>bold</b>\n> second line "quoted"'));

  const institution = 'Evil U\r\nBcc: everyone@example.org';
  const reminder = renderMail('membershipReminder', { ...EXAMPLES.membershipReminder, institution }, site);
  t.is(reminder.subject, 'Your Slidebank membership through Evil U Bcc: everyone@example.org ends in 7 days');
  t.false(/[\r\n]/.test(reminder.subject));
});

test('an empty name gives a greeting without one', (t) => {
  const mail = renderMail('duaApproved', { ...EXAMPLES.duaApproved, name: '' }, site);
  t.true(mail.text.startsWith('Hello,\n\n'));
  t.true(mail.html.includes('<p>Hello,</p>'));
});
