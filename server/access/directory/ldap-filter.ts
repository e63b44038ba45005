/**
 * Escapes a value for an LDAP search filter (RFC 4515, section 3): `*`, `(`,
 * `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c` and `\00`, so that what a
 * user types can only ever be compared, never change the filter's shape. Other
 * control characters are escaped too; letters beyond ASCII pass as UTF-8.
 */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (char === '*' || char === '(' || char === ')' || char === '\\' || code < 0x20 || code === 0x7f) {
      out += `\\${code.toString(16).padStart(2, '0')}`;
    } else {
      out += char;
    }
  }
  return out;
}

/** The configured user filter with `{username}` replaced, escaped, wherever it appears. */
export function userFilter(template: string, username: string): string {
  return template.split('{username}').join(escapeFilterValue(username));
}

/** Escapes a DN for use as a filter value (member=<dn>): the DN's own escapes are kept, the filter's added. */
export function memberFilter(attribute: string, dn: string): string {
  return `(${attribute}=${escapeFilterValue(dn)})`;
}
