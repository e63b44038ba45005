import { escapeHtml } from '../mail/index.js';
import type { DuaVersion } from './views.js';

/**
 * The agreement as a page to print, fill in and sign by hand: the text of the
 * version, then fields for the researcher's details and signature. Scanned as
 * a PDF, it is the signed agreement a researcher attaches to an application.
 */
export function printableAgreement(version: DuaVersion): string {
  const title = `${version.title} (version ${version.version})`;
  const field = (label: string) => `<tr><th>${escapeHtml(label)}</th><td></td></tr>`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeHtml(title)}</title>`,
    '<style>',
    'body{font-family:Georgia,serif;font-size:12pt;line-height:1.45;max-width:42em;margin:2em auto;color:#000}',
    '.instructions{border:1px solid #999;padding:.5em 1em;font-family:Arial,sans-serif;font-size:10pt}',
    'table.sign{width:100%;border-collapse:collapse;margin-top:1.5em}',
    'table.sign th{text-align:left;width:14em;font-weight:normal;padding:.9em .5em .2em 0;vertical-align:bottom}',
    'table.sign td{border-bottom:1px solid #000}',
    '@media print{.instructions{display:none}}',
    '</style>',
    '</head>',
    '<body>',
    '<p class="instructions">Print this page (or save it as a PDF), fill in your details, sign and date it, and scan the signed pages into one PDF. ' +
      'Upload that PDF to your application on your Slidebank account page: the administrators keep it as the signed record of your agreement. ' +
      'This box is not printed.</p>',
    `<p><small>Version ${escapeHtml(version.version)}, published ${version.publishedAt.toISOString().slice(0, 10)}</small></p>`,
    `<main>${version.html}</main>`,
    '<h2>Signature</h2>',
    `<p>I have read ${escapeHtml(title)} and accept its terms.</p>`,
    '<table class="sign">',
    field('Full name'),
    field('Institution'),
    field('Project'),
    field('Principal investigator'),
    field('E-mail address of the Slidebank account'),
    field('Place and date'),
    field('Signature'),
    '</table>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
