import { z } from 'zod';
import { LEVELS, STAFF_ROLES } from '../../access/levels.js';
import { PASSWORD_MAX_LENGTH } from '../../access/password-policy.js';
import type { Level, StaffRole } from '../../access/users.repository.js';

/**
 * What clients send to the account, token and user-management routes (and
 * what `slidebank user add` takes). Names and institutions are plain text:
 * markup (`<`, `>`) and control characters are refused with a 400 rather than
 * stored, since these values travel into e-mails, CSV exports and admin
 * screens. The password policy, which needs the account's e-mail address, is
 * the accounts service's.
 */

const PLAIN_TEXT = /^[^<>\p{Cc}]*$/u;
const plain = (field: string, min: number, max: number) =>
  z
    .string({ error: `${field} must be text` })
    .trim()
    .min(min, min === 1 ? `${field} must not be empty` : `${field} must be at least ${min} characters`)
    .max(max, `${field} must be at most ${max} characters`)
    .regex(PLAIN_TEXT, `${field} must be plain text, without < > or control characters`);

export const email = z
  .string({ error: 'e-mail must be text' })
  .trim()
  .max(254, 'e-mail must be at most 254 characters')
  .pipe(z.email({ error: 'e-mail must be an e-mail address' }))
  .transform((value) => value.toLowerCase())
  .meta({ description: 'An e-mail address; compared without regard to case' });

/** Any password, as far as its shape goes. */
const password = (field: string) =>
  z
    .string({ error: `${field} must be text` })
    .min(1, `${field} must not be empty`)
    .max(PASSWORD_MAX_LENGTH, `${field} must be at most ${PASSWORD_MAX_LENGTH} characters`);

export const personName = plain('name', 1, 200);
export const institution = plain('institution', 0, 200);
const linkToken = z
  .string({ error: 'token must be text' })
  .regex(/^[A-Za-z0-9_-]{20,100}$/, 'token must be the code from the link in the e-mail')
  .meta({ description: 'The code from the link in the e-mail (after #token=)' });

export const level = z.enum(LEVELS as [Level, ...Level[]], { error: `level must be one of ${LEVELS.join(', ')}` });
export const role = z.enum(STAFF_ROLES as [StaffRole, ...StaffRole[]], { error: `role must be one of ${STAFF_ROLES.join(', ')}` });

export const registration = z
  .strictObject({ name: personName, institution: institution.default(''), email, password: password('password') })
  .meta({ id: 'Registration' });
export const emailOnly = z.strictObject({ email }).meta({ id: 'EmailAddress' });
export const credentials = z.strictObject({ email, password: password('password') }).meta({ id: 'Credentials' });
export const linkOnly = z.strictObject({ token: linkToken }).meta({ id: 'MailedLink' });
export const passwordResetConfirmation = z.strictObject({ token: linkToken, password: password('password') }).meta({ id: 'PasswordReset' });
export const passwordChange = z
  .strictObject({ currentPassword: password('currentPassword'), newPassword: password('newPassword') })
  .meta({ id: 'PasswordChange' });
export const profileChange = z
  .strictObject({ name: personName.optional(), institution: institution.optional() })
  .refine((body) => body.name !== undefined || body.institution !== undefined, 'give name or institution')
  .meta({ id: 'ProfileChange' });

export const tokenRequest = z
  .strictObject({
    name: plain('name', 1, 100),
    scope: z.enum(['all', 'read'], { error: 'scope must be all or read' }).default('all').meta({ description: '"read" tokens may only GET' }),
    expiresInDays: z
      .number({ error: 'expiresInDays must be a number of days, or null' })
      .int('expiresInDays must be a whole number')
      .min(1, 'expiresInDays must be at least 1')
      .max(3650, 'expiresInDays must be at most 3650')
      .nullable()
      .default(null)
      .meta({ description: 'Days until the token expires; null (the default) for never' }),
  })
  .meta({ id: 'AccessTokenRequest' });

export const levelChange = z
  .strictObject({ level, reason: z.string({ error: 'reason must be text' }).trim().max(500, 'reason must be at most 500 characters').optional() })
  .meta({ id: 'LevelChange' });
export const rolesChange = z
  .strictObject({ roles: z.array(role, { error: 'roles must be a list' }).max(STAFF_ROLES.length, 'roles lists a role twice') })
  .meta({ id: 'RolesChange' });

/** A confirmed account as an operator makes it (`slidebank user add`). */
export const newAccount = z.strictObject({
  email,
  password: password('password'),
  level,
  roles: z.array(role).default([]),
  name: personName.optional(),
  institution: institution.optional(),
});
