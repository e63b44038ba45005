/**
 * The JSON API as the portal uses it: the session cookie (never a bearer
 * token in the browser), the CSRF token on writes, and the server's error
 * body `{error: {code, message, requestId, details?}}` as an ApiError.
 */
import type { components } from './api/schema';
import { errorSentence, problemsOf, type FieldLabels, type Problem } from './errors';

type Schemas = components['schemas'];

/** A refused request. `message` is for people (./errors.ts); the server's own words stay in `serverMessage`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly requestId: string | null,
    readonly details?: unknown,
  ) {
    super(errorSentence({ status, code, message: serverMessage, requestId, details }));
    this.name = 'ApiError';
  }

  /** Each field the server refused, with what is wrong with it (400 invalid_request, invalid_query). */
  get problems(): Problem[] {
    return problemsOf(this.details);
  }

  /** The message with the fields named by a form's own labels. */
  describe(labels: FieldLabels = {}): string {
    const { status, code, serverMessage, requestId, details } = this;
    return errorSentence({ status, code, message: serverMessage, requestId, details }, labels) || this.message;
  }
}

let csrfToken: string | null = null;
/** Called when a request that needed the session got 401: the session ended (expired, logged out elsewhere). */
let onSessionLost: (() => void) | null = null;

export function setCsrfToken(token: string | null | undefined): void {
  csrfToken = token ?? null;
}

export function whenSessionLost(handler: () => void): void {
  onSessionLost = handler;
}

export interface RequestOptions {
  body?: unknown;
  /** A raw body sent as it is with its own Content-Type (the signed PDF), instead of JSON. */
  raw?: { data: Blob; type: string };
  /** A 401 is an answer, not a lost session (e.g. `GET /api/auth/me` when logged out, or a wrong password). */
  expect401?: boolean;
  signal?: AbortSignal;
  /** Headers of the request's own (a chunk's Content-Range). */
  headers?: Record<string, string>;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** One request; the Response when it succeeded (downloads read it as a blob), an ApiError otherwise. */
export async function request(method: string, path: string, options: RequestOptions = {}, retried = false): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.raw) headers['Content-Type'] = options.raw.type;
  else if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  Object.assign(headers, options.headers);
  if (WRITES.has(method)) {
    if (csrfToken === null) await refreshCsrfToken();
    if (csrfToken !== null) headers['X-CSRF-Token'] = csrfToken;
  }
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: options.raw ? options.raw.data : options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', 'The server cannot be reached. Check the connection and try again.', null);
  }
  if (response.ok) return response;

  const problem = await errorOf(response);
  // The token changes at login and with a new session: fetch the current one and try once more.
  if (problem.code === 'csrf_token_invalid' && !retried) {
    await refreshCsrfToken();
    return request(method, path, options, true);
  }
  if (response.status === 401 && !options.expect401) onSessionLost?.();
  throw problem;
}

export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(method, path, options);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

export const get = <T>(path: string, options?: RequestOptions) => api<T>('GET', path, options);
export const post = <T>(path: string, body: unknown = {}, options?: RequestOptions) => api<T>('POST', path, { ...options, body });

async function refreshCsrfToken(): Promise<void> {
  try {
    const response = await fetch('/api/auth/csrf', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (response.ok) csrfToken = ((await response.json()) as Schemas['CsrfToken']).csrfToken;
  } catch {
    // The write itself will report the network problem.
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  const requestId = response.headers.get('x-request-id');
  try {
    // Read warily: a proxy in between may answer JSON of its own.
    const body = (await response.json()) as { error?: Partial<Schemas['Error']['error']> };
    if (body.error) {
      return new ApiError(response.status, body.error.code ?? 'error', body.error.message ?? response.statusText, body.error.requestId ?? requestId, body.error.details);
    }
  } catch {
    // not JSON: a proxy's error page
  }
  return new ApiError(response.status, 'http_error', `The server answered ${response.status} ${response.statusText}`, requestId);
}

/** Query parameters from a plain object; arrays are comma-joined (the catalog's convention), empty values dropped. */
export function queryString(params: Record<string, string | number | string[] | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) {
      if (value.length > 0) search.set(key, value.join(','));
    } else search.set(key, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** Save a Response body as a file (the ZIP bundle), named as the server's Content-Disposition says. */
export async function saveResponse(response: Response, fallbackName: string): Promise<void> {
  const disposition = response.headers.get('content-disposition') ?? '';
  const match = /filename\*=UTF-8''([^;]+)|filename="([^"]+)"/i.exec(disposition);
  const name = match ? decodeURIComponent(match[1] ?? match[2] ?? fallbackName) : fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
