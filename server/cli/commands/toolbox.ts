import { Command } from 'commander';
import { heatmapCommand } from './toolbox/heatmap.js';
import { INPUT_HELP } from './toolbox/help.js';
import { patchesCommand } from './toolbox/patches.js';
import { stitchCommand } from './toolbox/stitch.js';
import { tissueMaskCommand } from './toolbox/tissue-mask.js';
import { xmlMasksCommand } from './toolbox/xml-masks.js';

export function toolboxCommand(): Command {
  return new Command('toolbox')
    .description('preprocessing toolbox: tissue masks, XML masks, patches, stitching of predictions, heat maps')
    .addCommand(tissueMaskCommand())
    .addCommand(xmlMasksCommand())
    .addCommand(patchesCommand())
    .addCommand(stitchCommand())
    .addCommand(heatmapCommand())
    .addHelpText('after', `\n${INPUT_HELP}\nRun "slidebank toolbox <tool> --help" for each tool's options.`);
}
