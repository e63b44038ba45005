/**
 * Why a toolbox run was refused. `parameter` names the library option that is
 * wrong (the CLI maps it to its flag), `problem` says what is wrong; the
 * message is both. Thrown before any output is written.
 */
export class ToolboxError extends Error {
  readonly parameter: string;
  readonly problem: string;

  constructor(parameter: string, problem: string) {
    super(`${parameter} ${problem}`);
    this.name = 'ToolboxError';
    this.parameter = parameter;
    this.problem = problem;
  }
}

/** A whole number ≥ `min` (and ≤ `max`), or a ToolboxError naming `parameter`. */
export function requireWhole(parameter: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ToolboxError(parameter, `must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}, got ${String(value)}`);
  }
  return value;
}

/** A finite number in [min, max], or a ToolboxError naming `parameter`. */
export function requireNumber(parameter: string, value: number, min: number, max = Infinity): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ToolboxError(parameter, `must be a number from ${min}${Number.isFinite(max) ? ` to ${max}` : ' up'}, got ${String(value)}`);
  }
  return value;
}
