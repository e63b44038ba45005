/**
 * Toolbox flags read as the job parameters the queue takes
 * (server/queue/tasks/parameters.ts): each flag's kind (whole number, number,
 * one of a set, text), its choices, its default and its bounds come from the
 * parameter's schema, so that the command line and the job API cannot drift
 * apart. Every refusal names the flag and exits with 2.
 */
import { z } from 'zod';
import { ExitCode, FatalError } from '../errors.js';

export function usageError(message: string): FatalError {
  return new FatalError(ExitCode.config, message);
}

function parseNumber(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw usageError(`${flag} must be a number, got "${raw}"`);
  return value;
}

export function parseWhole(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\s*[+-]?\d+\s*$/.test(raw)) throw usageError(`${flag} must be a whole number, got "${raw}"`);
  return Number(raw);
}

export function parseChoice<T extends string>(flag: string, raw: string | undefined, values: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(values as readonly string[]).includes(raw)) throw usageError(`${flag} must be one of ${values.join(', ')}, got "${raw}"`);
  return raw as T;
}

/** A job parameters schema: an object of parameters (refinements allowed). */
type ParameterSchema = z.ZodObject;

/** The flag of each parameter a command takes on its command line. */
export type ParameterFlags<S extends ParameterSchema> = Partial<Record<keyof S['shape'] & string, string>>;

/** A parameter's type under its `.optional()` and `.default()`, and its default. */
function parameter(schema: ParameterSchema, key: string): { type: z.ZodType; defaultValue?: unknown } {
  let type = schema.shape[key] as z.ZodType | undefined;
  if (!type) throw new Error(`no job parameter ${key}`);
  let defaultValue: unknown;
  for (;;) {
    if (type instanceof z.ZodDefault) {
      defaultValue = type.def.defaultValue;
      type = type.unwrap() as z.ZodType;
    } else if (type instanceof z.ZodOptional) {
      type = type.unwrap() as z.ZodType;
    } else {
      return { type, defaultValue };
    }
  }
}

/** A parameter's default as commander shows and passes it (the text of the value). */
export function flagDefault<S extends ParameterSchema>(schema: S, key: keyof S['shape'] & string): string {
  const { defaultValue } = parameter(schema, key);
  if (defaultValue === undefined) throw new Error(`job parameter ${key} has no default`);
  return String(defaultValue);
}

/** A number parameter's bounds as help text, such as `1 to 8192`. */
export function flagBounds<S extends ParameterSchema>(schema: S, key: keyof S['shape'] & string, separator = ' to '): string {
  const { type } = parameter(schema, key);
  if (!(type instanceof z.ZodNumber) || type.minValue === null || type.maxValue === null) throw new Error(`job parameter ${key} is not a bounded number`);
  return `${type.minValue}${separator}${type.maxValue}`;
}

/** The text of a flag as its parameter's value: a whole number, a number, one of the choices, or text. */
function flagValue(type: z.ZodType, flag: string, raw: string): unknown {
  if (type instanceof z.ZodNumber) return type.isInt ? parseWhole(flag, raw) : parseNumber(flag, raw);
  if (type instanceof z.ZodEnum) return parseChoice(flag, raw, type.options as string[]);
  // A whole number or a name (such as a layer's id or name).
  if (type instanceof z.ZodUnion && /^\d+$/.test(raw) && type.options.some((option) => option instanceof z.ZodNumber)) return Number(raw);
  return raw;
}

/** commander's name for a flag's value: `--min-object` is `minObject`. */
function optionName(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** The parameters given on the command line, read from commander's options; a flag left out is left out. */
export function readFlags<S extends ParameterSchema>(schema: S, flags: ParameterFlags<S>, options: object): Partial<z.output<S>> {
  const values: Record<string, unknown> = {};
  for (const [key, flag] of Object.entries(flags) as [string, string][]) {
    const raw = (options as Record<string, unknown>)[optionName(flag)];
    if (raw === undefined) continue;
    values[key] = typeof raw === 'string' ? flagValue(parameter(schema, key).type, flag, raw) : raw;
  }
  return values as Partial<z.output<S>>;
}

export interface CheckedParameters {
  /** Throws for the first bound the values break (see checkParameters). */
  assertWithinBounds(): void;
}

/**
 * The values checked against the parameters' schema. Whatever is not a bound
 * (two flags that exclude each other, a malformed name) is refused at once. A
 * value out of bounds is refused by `assertWithinBounds`, which a command calls
 * after the library has checked the values against the slide: the library's
 * refusal names the slide's own limit, which is the more useful message.
 * Parameters without a flag (the queue's predictions, a heat map's source) are
 * the command's own business and not checked here.
 */
export function checkParameters<S extends ParameterSchema>(schema: S, flags: ParameterFlags<S>, values: object): CheckedParameters {
  const result = schema.safeParse(values);
  const flagged = flags as Record<string, string | undefined>;
  const issues = result.success ? [] : result.error.issues.filter((issue) => flagged[String(issue.path[0])] !== undefined);
  const isBound = (issue: z.core.$ZodIssue) => issue.code === 'too_small' || issue.code === 'too_big';
  const message = (issue: z.core.$ZodIssue) => {
    const key = String(issue.path[0]);
    // An exclusion speaks of parameters by name: on the command line they are flags.
    if (issue.code === 'custom') return issue.message.replace(/\b[A-Za-z]+\b/g, (word) => flagged[word] ?? word);
    return `${flagged[key]} ${issue.message}${isBound(issue) ? `, got ${String((values as Record<string, unknown>)[key])}` : ''}`;
  };
  const first = issues.find((issue) => !isBound(issue));
  if (first) throw usageError(message(first));
  return {
    assertWithinBounds() {
      const bound = issues.find(isBound);
      if (bound) throw usageError(message(bound));
    },
  };
}
