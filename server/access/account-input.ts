import { z } from 'zod';
import { AppError } from '../errors.js';
import { PASSWORD_MAX_LENGTH } from './password-policy.js';

/**
 * The shapes of what clients send to the account, token and admin routes.
 * Names and institutions are plain text: markup (`<`, `>`) and control
 * characters are refused with a 400 rather than stored, since these values
 * travel into e-mails, CSV exports and admin screens.
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
  .transform((value) => value.toLowerCase());

/** Any password, as far as its shape goes: the policy (password-policy.ts) is checked where the e-mail is known. */
export const password = z
  .string({ error: 'password must be text' })
  .min(1, 'password must not be empty')
  .max(PASSWORD_MAX_LENGTH, `password must be at most ${PASSWORD_MAX_LENGTH} characters`);

export const personName = plain('name', 1, 200);
export const institution = plain('institution', 0, 200);
export const linkToken = z
  .string({ error: 'token must be text' })
  .regex(/^[A-Za-z0-9_-]{20,100}$/, 'token must be the code from the link in the e-mail');

export const registration = z.strictObject({ name: personName, institution: institution.default(''), email, password });
export const emailOnly = z.strictObject({ email });
export const credentials = z.strictObject({ email, password });
export const linkOnly = z.strictObject({ token: linkToken });
export const passwordResetConfirmation = z.strictObject({ token: linkToken, password });
export const passwordChange = z.strictObject({ currentPassword: password, newPassword: password });
export const profileChange = z
  .strictObject({ name: personName.optional(), institution: institution.optional() })
  .refine((body) => body.name !== undefined || body.institution !== undefined, 'give name or institution');

export const tokenRequest = z.strictObject({
  name: plain('name', 1, 100),
  scope: z.enum(['all', 'read'], { error: 'scope must be all or read' }).default('all'),
  expiresInDays: z
    .number({ error: 'expiresInDays must be a number of days, or null' })
    .int('expiresInDays must be a whole number')
    .min(1, 'expiresInDays must be at least 1')
    .max(3650, 'expiresInDays must be at most 3650')
    .nullable()
    .default(null),
});

export interface Problem {
  field: string;
  message: string;
}

/** Validate a request body (or query) against a shape; every problem is reported at once in a 400. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems: Problem[] = result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: key, message: `${key} is not a field of this request` }))
      : [{ field: issue.path.join('.') || '(body)', message: issue.path.length === 0 && issue.code === 'invalid_type' ? 'the body must be a JSON object' : issue.message }],
  );
  throw new AppError(400, 'invalid_request', problems.map((p) => p.message).join('; '), { details: { problems } });
}
