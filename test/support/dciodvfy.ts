import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * dciodvfy (Debian's dicom3tools) as an independent check of the DICOM
 * files Slidebank writes: it verifies an instance against the IOD its SOP
 * class names, attribute by attribute.
 */
export const dciodvfyProblem = ((): string | undefined => {
  try {
    execFileSync('sh', ['-c', 'command -v dciodvfy'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'dciodvfy is not installed (apt-get install dicom3tools)';
  }
})();

export interface Verification {
  errors: string[];
  warnings: string[];
}

/** dciodvfy's findings for one file: its "Error" and "Warning" lines. */
export async function dciodvfy(file: string): Promise<Verification> {
  // dciodvfy exits non-zero when it finds errors; its report is on stderr either way.
  const output = await promisify(execFile)('dciodvfy', [file], { maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => stdout + stderr,
    (error: { stdout?: string; stderr?: string }) => (error.stdout ?? '') + (error.stderr ?? ''),
  );
  const lines = output.split('\n').map((line) => line.trim());
  return { errors: lines.filter((l) => /^Error\b/.test(l) || / - Error - /.test(l)), warnings: lines.filter((l) => /^Warning\b/.test(l) || / - Warning - /.test(l)) };
}
