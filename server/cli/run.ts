import { loadConfig, type LoadedConfig } from '../config/index.js';
import { ExitCode, FatalError } from '../errors.js';

/** Options every command inherits from the program. */
export interface GlobalOptions {
  configDir?: string;
}

/** Load configuration with command-line values on top, named as their options in messages. */
export function configFromCli(
  global: GlobalOptions,
  overrides: Record<string, { value: unknown; option: string }> = {},
): LoadedConfig {
  return loadConfig({
    ...(global.configDir ? { configDir: global.configDir } : {}),
    overrides: Object.fromEntries(Object.entries(overrides).map(([key, o]) => [key, o.value])),
    overrideNames: Object.fromEntries(Object.entries(overrides).map(([key, o]) => [key, o.option])),
  });
}

/**
 * Run a command's work and turn its failure into one line on stderr and the
 * right exit code: a FatalError speaks for itself; anything else is a bug and
 * keeps its stack.
 */
export async function runCommand(work: () => Promise<number | void>): Promise<void> {
  try {
    const code = await work();
    if (typeof code === 'number') process.exitCode = code;
  } catch (error) {
    if (error instanceof FatalError) {
      process.stderr.write(`slidebank: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      process.stderr.write(`slidebank: unexpected failure: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = ExitCode.failure;
    }
  }
}
