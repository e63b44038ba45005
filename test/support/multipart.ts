/** A multipart/related body (RFC 2387) split by the boundary its Content-Type names: each part's headers and bytes. */
export function parseMultipart(contentType: string, body: Buffer): { headers: Record<string, string>; body: Buffer }[] {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  let at = body.indexOf(delimiter);
  if (at !== 0) throw new Error('the body does not start with the boundary');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') break;
    const headEnd = body.indexOf('\r\n\r\n', at);
    const headers = Object.fromEntries(
      body.subarray(at + 2, headEnd).toString('latin1').split('\r\n').map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headEnd + 4);
    if (next < 0) throw new Error('a part without its closing boundary');
    parts.push({ headers, body: body.subarray(headEnd + 4, next) });
    at = next + 2;
  }
  return parts;
}
