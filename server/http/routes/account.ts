import { z } from 'zod';
import { accountView } from '../../access/views.js';
import { HISTORY_PAGE_SIZE } from '../../downloads/history.service.js';
import { downloadHistoryPage } from '../../downloads/history-views.js';
import { loggedIn, sessionOnly } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { retryAfter } from '../middleware/retry-after.js';
import { sessionOf } from '../middleware/session.js';
import { wholeQuery } from '../params.js';
import { requesterOf } from '../requester.js';
import { route } from '../route.js';
import { passwordChange, profileChange } from '../schemas/accounts.js';

/** The requester's own account, for any logged-in user (session or token); answers are never cached. */

const tag = 'Accounts';
const before = [noStore, retryAfter];

// Other parameters are ignored, as they always were: the history is the caller's own, whatever the query says.
const historyQuery = z.object({
  page: wholeQuery('page', 1, 1, 1_000_000),
  pageSize: wholeQuery('pageSize', HISTORY_PAGE_SIZE.default, 1, HISTORY_PAGE_SIZE.max),
});

export const accountRoutes = [
  route({
    method: 'get',
    path: '/api/account',
    tag,
    summary: 'The profile of the account',
    access: loggedIn,
    before,
    response: { description: 'The account', schema: accountView },
    handle: (_input, ctx) => ctx.services.access.accounts.profile(requesterOf(ctx)),
  }),
  route({
    method: 'patch',
    path: '/api/account',
    tag,
    summary: 'Change the name or institution of the account',
    access: loggedIn,
    body: profileChange,
    before,
    response: { description: 'The account as changed', schema: accountView },
    handle: ({ body }, ctx) => ctx.services.access.accounts.updateProfile(requesterOf(ctx), body),
  }),
  route({
    method: 'get',
    path: '/api/account/downloads',
    tag,
    summary: 'The files and bundles this account downloaded, newest first',
    description: 'From the audit log, with the bytes sent and whether each download completed. Other query parameters are ignored: the history is always the caller\'s own.',
    access: loggedIn,
    query: historyQuery,
    before,
    response: { description: 'A page of the download history', schema: downloadHistoryPage },
    handle: ({ query }, ctx) => ctx.services.downloadHistory.forUser(requesterOf(ctx).user!.id, query),
  }),
  route({
    method: 'post',
    path: '/api/account/password',
    tag,
    summary: 'Change the password: the current one is required; other sessions end and access tokens are revoked',
    description: 'Only through a logged-in session, never a token. A wrong current password is a 403 wrong_password; the new one must satisfy the password policy (400 weak_password).',
    access: sessionOnly,
    body: passwordChange,
    before,
    response: { status: 204, description: 'Changed; this session goes on, and the owner is sent a notice' },
    handle: async ({ body }, ctx) => {
      await ctx.services.access.accounts.changePassword(requesterOf(ctx), body, actorOf(ctx), sessionOf(ctx)?.externalKey);
    },
  }),
];
