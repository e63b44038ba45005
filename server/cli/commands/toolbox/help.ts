export const INPUT_HELP =
  'INPUT is a slide file (Aperio SVS or tiled pyramidal TIFF). Slide ids from the catalog are not accepted yet: they come with the toolbox jobs.';
export const EXIT_HELP = 'Exit codes: 0 written, 1 the work failed (unreadable slide or XML), 2 bad option (nothing is written).';
