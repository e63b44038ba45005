import { z } from 'zod';
import { adminUserList, adminUserView } from '../../access/views.js';
import { adminOnly } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { idParam, textQuery, wholeQuery } from '../params.js';
import { route } from '../route.js';
import { level, levelChange, role, rolesChange } from '../schemas/accounts.js';

/** User management, for administrators; each change is audited, and takes effect on the account's next request. */

const tag = 'Administration';
const before = [noStore];
const userId = z.strictObject({ id: idParam('user') });

const searchQuery = z.strictObject({
  q: textQuery('q', 200).meta({ description: 'Part of the e-mail address, name or institution, in any case' }),
  level: level.optional(),
  role: role.optional(),
  status: z.enum(['active', 'disabled', 'unconfirmed'], { error: 'status must be active, disabled or unconfirmed' }).optional(),
  page: wholeQuery('page', 1, 1, 1_000_000),
  pageSize: wholeQuery('pageSize', 50, 1, 100),
});

export const adminUserRoutes = [
  route({
    method: 'get',
    path: '/api/admin/users',
    tag,
    summary: 'Find accounts by address, name or institution, level, role or status',
    access: adminOnly,
    query: searchQuery,
    before,
    response: { description: 'A page of accounts, by e-mail address', schema: adminUserList },
    handle: ({ query }, ctx) => ctx.services.access.users.search(query),
  }),
  route({
    method: 'get',
    path: '/api/admin/users/{id}',
    tag,
    summary: 'One account',
    access: adminOnly,
    params: userId,
    before,
    response: { description: 'The account', schema: adminUserView },
    handle: ({ params }, ctx) => ctx.services.access.users.get(params.id),
  }),
  route({
    method: 'put',
    path: '/api/admin/users/{id}/level',
    tag,
    summary: 'Set the access level to L0, L1 or L3',
    description:
      'L2 comes with an approved data use agreement and cannot be set here (400 level_requires_dua). Raising an unconfirmed account to L1 or more confirms its address: the administrator vouches for it.',
    access: adminOnly,
    params: userId,
    body: levelChange,
    before,
    response: { description: 'The account as changed', schema: adminUserView },
    handle: ({ params, body }, ctx) => ctx.services.access.users.setLevel(params.id, body, actorOf(ctx)),
  }),
  route({
    method: 'put',
    path: '/api/admin/users/{id}/roles',
    tag,
    summary: 'Set the staff roles (admin, curator, pathologist)',
    description: 'The last active administrator keeps the admin role (409 last_admin).',
    access: adminOnly,
    params: userId,
    body: rolesChange,
    before,
    response: { description: 'The account as changed', schema: adminUserView },
    handle: ({ params, body }, ctx) => ctx.services.access.users.setRoles(params.id, body.roles, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/admin/users/{id}/disable',
    tag,
    summary: 'Disable an account: its sessions end, its access tokens and reset links are revoked for good',
    description: 'Not your own account (409 cannot_disable_self), nor the last active administrator (409 last_admin). Disabling a disabled account changes nothing.',
    access: adminOnly,
    params: userId,
    before,
    response: { description: 'The account, disabled', schema: adminUserView },
    handle: ({ params }, ctx) => ctx.services.access.users.disable(params.id, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/admin/users/{id}/enable',
    tag,
    summary: 'Let a disabled account log in again (what disabling revoked stays revoked)',
    access: adminOnly,
    params: userId,
    before,
    response: { description: 'The account, enabled', schema: adminUserView },
    handle: ({ params }, ctx) => ctx.services.access.users.enable(params.id, actorOf(ctx)),
  }),
];
