/**
 * Hospital sign-in in the portal: the directory and the single sign-on
 * providers the login page offers, linking an identity with the local account
 * of its address, and how an account's source is named.
 */
import type { components } from './api/schema';

type Schemas = components['schemas'];

export type SignInOptions = Schemas['SignInOptions'];
export type PendingLink = NonNullable<Schemas['PendingLink']>;
export type SignInOverview = Schemas['SignInOverview'];

/** Where an account comes from, in words. */
export function sourceLabel(source: string): string {
  if (source === 'ldap') return 'the hospital directory';
  if (source.startsWith('oidc:')) return `single sign-on (${source.slice(5)})`;
  return 'registered here';
}

/** Why a single sign-on came back to the login page, as a sentence (the callback's `signInError`). */
export function signInErrorText(code: string): string {
  switch (code) {
    case 'sign_in_state':
      return 'This sign-in was not started here or took too long. Start it again with the button below.';
    case 'sign_in_expired':
      return 'The sign-in took too long. Start it again with the button below.';
    case 'sign_in_denied':
      return 'The single sign-on did not sign you in.';
    case 'no_email':
      return 'Your hospital account has no e-mail address, which Slidebank needs. Ask the directory’s administrators to add one.';
    case 'address_taken':
      return 'Your address belongs to an account that signs in another way. Ask an administrator.';
    case 'account_disabled':
      return 'This account is disabled; ask an administrator.';
    case 'provider_unavailable':
      return 'The single sign-on cannot be reached just now. Try again in a few minutes, or log in with a password.';
    default:
      return 'The single sign-on answer could not be verified. Start the sign-in again.';
  }
}
