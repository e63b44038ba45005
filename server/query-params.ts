import { badRequest } from './errors.js';

/**
 * A whole-number query parameter (`?limit=50`): `fallback` when absent or
 * empty, else digits only within [min, max]; anything else is a 400
 * `invalid_query` that names the parameter.
 */
export function wholeParam(value: unknown, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || n < min || n > max) {
    throw badRequest('invalid_query', `${name} must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/** A yes/no query parameter (`?holey=1`): false when absent or empty, `1`/`true` or `0`/`false`; anything else is a 400 `invalid_query`. */
export function flagParam(value: unknown, name: string): boolean {
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw badRequest('invalid_query', `${name} must be 1 or 0`);
}
