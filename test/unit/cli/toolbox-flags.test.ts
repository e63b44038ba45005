// The toolbox commands read their flags through the queue's job parameter schemas.
import test, { type ExecutionContext } from 'ava';
import { checkParameters, flagBounds, flagDefault, readFlags } from '../../../server/cli/toolbox-flags.js';
import { FatalError } from '../../../server/errors.js';
import { patchesParameters, stitchParameters, tissueMaskParameters } from '../../../server/queue/tasks/parameters.js';

const PATCHES = { level: '--level', magnification: '--magnification', size: '--size', tumourLayer: '--tumour-layer', labels: '--labels', format: '--format', limit: '--limit' };

function refusal(t: ExecutionContext, work: () => unknown): string {
  const error = t.throws(work, { instanceOf: FatalError }) as FatalError;
  t.is(error.exitCode, 2);
  return error.message;
}

test('flags are read by the kind of their job parameter: whole number, number, one of a set, id or name, yes or no', (t) => {
  const values = readFlags(patchesParameters, PATCHES, { size: '128', magnification: '2.5', format: 'jpeg', tumourLayer: '2', labels: false });
  t.deepEqual(values, { size: 128, magnification: 2.5, format: 'jpeg', tumourLayer: 2, labels: false });
  t.deepEqual(readFlags(patchesParameters, PATCHES, { tumourLayer: 'viable' }), { tumourLayer: 'viable' });
  t.is(refusal(t, () => readFlags(patchesParameters, PATCHES, { size: '1.5' })), '--size must be a whole number, got "1.5"');
  t.is(refusal(t, () => readFlags(patchesParameters, PATCHES, { magnification: 'x' })), '--magnification must be a number, got "x"');
  t.is(refusal(t, () => readFlags(patchesParameters, PATCHES, { format: 'gif' })), '--format must be one of png, jpeg, got "gif"');
});

test('defaults and bounds shown on the command line are those of the job parameters', (t) => {
  t.is(flagDefault(patchesParameters, 'size'), String(patchesParameters.parse({}).size));
  t.is(flagDefault(tissueMaskParameters, 'method'), 'grey');
  t.is(flagDefault(stitchParameters, 'window'), 'gaussian');
  t.is(flagBounds(patchesParameters, 'size'), '1 to 8192');
  t.is(flagBounds(patchesParameters, 'quality', '-'), '1-100');
});

test('flags that exclude each other are refused at once; a bound only when asked, after the library has had its say', (t) => {
  t.is(refusal(t, () => checkParameters(patchesParameters, PATCHES, { level: 1, magnification: 5 })), '--level and --magnification exclude each other; give one');
  const outOfBounds = checkParameters(patchesParameters, PATCHES, { limit: 2_000_000 });
  t.is(refusal(t, () => outOfBounds.assertWithinBounds()), '--limit must be at most 1000000, got 2000000');
  t.notThrows(() => checkParameters(patchesParameters, PATCHES, { size: 256, limit: 10 }).assertWithinBounds());
  // The queue's predictions come from a file on the command line: a parameter without a flag is not checked here.
  t.notThrows(() => checkParameters(stitchParameters, { downsample: '--downsample' }, { downsample: 16 }).assertWithinBounds());
});
