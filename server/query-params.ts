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
