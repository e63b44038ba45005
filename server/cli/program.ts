import { Command, Option } from 'commander';
import { version } from '../package-info.js';
import { annotationsCommand } from './commands/annotations.js';
import { configCommand } from './commands/config.js';
import { makeSlideCommand } from './commands/make-slide.js';
import { cronCommand } from './commands/cron.js';
import { fetchCommand } from './commands/fetch.js';
import { ingestCommand } from './commands/ingest.js';
import { migrateCommand } from './commands/migrate.js';
import { serveCommand } from './commands/serve.js';
import { toolboxCommand } from './commands/toolbox.js';
import { userCommand } from './commands/user.js';
import { duaCommand } from './commands/dua.js';
import { datasetCommand } from './commands/dataset.js';
import { exportCommand } from './commands/export.js';
import { importCommand } from './commands/import.js';
import { mirrorCommand } from './commands/mirror.js';
import { workerCommand } from './commands/worker.js';
import { challengeCommand } from './commands/challenge.js';
import { dicomCommand } from './commands/dicom.js';
import { authCommand } from './commands/auth.js';

/** The `slidebank` command line; main.ts runs it on the process's arguments. */
export function buildProgram(): Command {
  const program = new Command('slidebank')
    .description('Slidebank: share de-identified, annotated pathology slides with researchers')
    .version(version, '-v, --version')
    .addOption(
      new Option('--config-dir <dir>', 'folder with default.json and <NODE_ENV>.json').env('SLIDEBANK_CONFIG_DIR'),
    )
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions();
  program.addCommand(serveCommand());
  program.addCommand(migrateCommand());
  program.addCommand(ingestCommand());
  program.addCommand(cronCommand());
  program.addCommand(configCommand());
  program.addCommand(makeSlideCommand());
  program.addCommand(fetchCommand());
  program.addCommand(userCommand());
  program.addCommand(duaCommand());
  program.addCommand(toolboxCommand());
  program.addCommand(annotationsCommand());
  program.addCommand(datasetCommand());
  program.addCommand(exportCommand());
  program.addCommand(importCommand());
  program.addCommand(mirrorCommand());
  program.addCommand(workerCommand());
  program.addCommand(challengeCommand());
  program.addCommand(dicomCommand());
  program.addCommand(authCommand());
  return program;
}

