import { z } from 'zod';
import { MAX_ACTIVE_TOKENS } from '../../access/tokens.service.js';
import { createdToken, tokenList } from '../../access/views.js';
import { loggedIn, sessionOnly } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { idParam } from '../params.js';
import { requesterOf } from '../requester.js';
import { route } from '../route.js';
import { tokenRequest } from '../schemas/accounts.js';

/** The requester's personal access tokens (`Authorization: Bearer sbk_…`); answers are never cached. */

const tag = 'Accounts';
const before = [noStore];

export const tokenRoutes = [
  route({
    method: 'get',
    path: '/api/tokens',
    tag,
    summary: "The account's access tokens, by name and prefix (never the tokens themselves)",
    access: loggedIn,
    before,
    response: { description: 'The tokens, active, expired and revoked', schema: tokenList },
    handle: (_input, ctx) => ctx.services.access.tokens.list(requesterOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/tokens',
    tag,
    summary: 'Make an access token; the answer shows it this once',
    description: `Only through a logged-in session: a token cannot make tokens. An account holds at most ${MAX_ACTIVE_TOKENS} active tokens (409 too_many_tokens). Only a hash of the token is kept, so it cannot be shown again. A token of scope read may only GET (403 token_scope otherwise).`,
    access: sessionOnly,
    body: tokenRequest,
    before,
    response: { status: 201, description: 'The token, with `token` shown this once', schema: createdToken },
    handle: ({ body }, ctx) => ctx.services.access.tokens.create(requesterOf(ctx), body, actorOf(ctx)),
  }),
  route({
    method: 'delete',
    path: '/api/tokens/{id}',
    tag,
    summary: 'Revoke one of the account\'s tokens; revoking twice is harmless',
    access: loggedIn,
    params: z.strictObject({ id: idParam('token') }),
    before,
    response: { status: 204, description: 'Revoked' },
    handle: async ({ params }, ctx) => {
      await ctx.services.access.tokens.revoke(requesterOf(ctx), params.id, actorOf(ctx));
    },
  }),
];
