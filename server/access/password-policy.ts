/**
 * The password policy: at least 12 characters (NIST SP 800-63B asks for 8 at
 * least and recommends allowing long passphrases; 12 is the common floor for
 * accounts that reach patient-derived data), at most 1024, not the account's
 * e-mail address or its local part, not one character repeated, and not on a
 * short list of passwords that top every breach list at this length.
 */

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;

const COMMON = new Set(
  [
    '123456789012', '1234567890123', '12345678901234', '123456789123', '123123123123', '123412341234',
    '098765432109', '012345678910', '987654321098', '111111111111', '000000000000', '121212121212',
    'password1234', 'password12345', 'password123!', 'password1234!', 'passwordpassword', 'password@123',
    'p@ssw0rd1234', 'passw0rd1234', 'p@ssword1234', 'mypassword123', 'changeme1234', 'changemenow!',
    'qwertyuiop12', 'qwertyuiop123', 'qwerty123456', 'qwertyqwerty', 'qwerty123qwerty', 'asdfghjkl123',
    'asdfasdfasdf', 'zxcvbnm12345', '1q2w3e4r5t6y', '1qaz2wsx3edc', 'zaq12wsxcde3', 'q1w2e3r4t5y6',
    'abcdefghijkl', 'abc123456789', 'abcd12345678', 'iloveyou1234', 'letmein12345', 'welcome12345',
    'welcome123!', 'administrator', 'administrator1', 'adminadmin123', 'admin1234567', 'football1234',
    'baseball1234', 'sunshine1234', 'princess1234', 'superman1234', 'monkey123456', 'dragon123456',
    'master123456', 'trustno1trustno1', 'correcthorsebatterystaple', 'slidebank123', 'slidebank1234',
    'slidebank2026', 'hospital1234', 'pathology123', 'pathologist1', 'researcher12',
  ].map((p) => p.toLowerCase()),
);

/** What is wrong with the password, in words for the user; empty when it passes. */
export function passwordProblems(password: string, email: string): string[] {
  const problems: string[] = [];
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) problems.push(`must be at least ${PASSWORD_MIN_LENGTH} characters long`);
  if (length > PASSWORD_MAX_LENGTH) problems.push(`must be at most ${PASSWORD_MAX_LENGTH} characters long`);
  const lower = password.toLowerCase();
  const address = email.trim().toLowerCase();
  const local = address.split('@')[0] ?? '';
  if (address !== '' && (lower === address || (local.length >= 4 && lower === local))) problems.push('must not be your e-mail address');
  if (length > 0 && new Set(password).size === 1) problems.push('must not be one character repeated');
  if (COMMON.has(lower)) problems.push('is one of the most common passwords; choose another');
  return problems;
}
