import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ExitCode, FatalError } from '../../../server/errors.js';
import type { Vocabulary } from '../../../server/ingest/types.js';
import { displayName, loadVocabulary, lookup, type VocabularyField } from '../../../server/catalog/vocabulary.js';
import { packageRoot } from '../../../server/package-info.js';

const realFile = path.join(packageRoot, 'config', 'vocabularies.json');
const real = loadVocabulary(realFile);

/** A small valid vocabulary; tests break it one way or many. */
function minimal() {
  return {
    version: 1,
    organs: [
      { code: 'LV', name: 'Liver', histologies: [{ code: 'HCC', name: 'Hepatocellular carcinoma' }], requiredFields: ['differentiation'] },
    ],
    stains: [
      { code: 'HE', name: 'H&E', requiresMarker: false },
      { code: 'IHC', name: 'IHC', requiresMarker: true },
    ],
    markers: [{ code: 'KI67', name: 'Ki-67' }],
    differentiations: [{ code: 'WD', name: 'Well differentiated' }],
    annotationMethods: [{ code: 'M', name: 'manual' }],
  };
}

async function write(content: unknown): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-vocabulary-'));
  const file = path.join(dir, 'vocabularies.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The problem lines of the FatalError that loading `file` throws. */
function problemsOf(file: string): string[] {
  try {
    loadVocabulary(file);
  } catch (error) {
    if (!(error instanceof FatalError)) throw error;
    if (error.exitCode !== ExitCode.config) throw new Error(`exit code ${error.exitCode}, expected ${ExitCode.config}`);
    const [first, ...lines] = error.message.split('\n');
    if (first !== `vocabulary ${file} is invalid:`) throw new Error(`unexpected first line: ${first}`);
    return lines.map((line) => line.replace(/^ {2}- /, ''));
  }
  throw new Error('expected a FatalError');
}

test('the shipped vocabulary loads', (t) => {
  t.is(real.version, 1);
  t.deepEqual(
    real.organs.map((o) => o.code),
    ['LV', 'CO', 'PR', 'PB', 'KI'],
  );
  t.deepEqual(real.organs.find((o) => o.code === 'PR')?.requiredFields, ['pathologyInfo']);
  t.deepEqual(
    real.stains.map((s) => [s.code, s.requiresMarker]),
    [
      ['HE', false],
      ['IHC', true],
    ],
  );
  t.true(real.markers.some((m) => m.code === 'KI67' && m.name === 'Ki-67'));
});

test('a minimal vocabulary loads unchanged, with names trimmed', async (t) => {
  const content = minimal();
  content.markers[0]!.name = '  Ki-67 ';
  const loaded = loadVocabulary(await write(content));
  t.is(loaded.markers[0]!.name, 'Ki-67');
  t.deepEqual(loaded, { ...minimal() });
});

test('every problem of a vocabulary is reported at once with its JSON path', async (t) => {
  const broken = {
    version: '1',
    organs: [
      {
        code: 'lv',
        name: 'Liver',
        colour: 'red',
        histologies: [
          { code: 'HCC', name: 'Hepatocellular carcinoma' },
          { code: 'HCC', name: 'Hepatoblastoma' },
        ],
        requiredFields: ['differentiation', 'grade'],
      },
      { code: 'CO', name: ' ', histologies: [] },
      { code: 'ABCDEFGHI', name: 'Colon', histologies: [{ code: 'ADC', name: 'Adenocarcinoma' }], requiredFields: [] },
      { code: 'CO', name: 'Kidney', histologies: [{ code: 'RCC', name: 'liver' }], requiredFields: [] },
    ],
    stains: [
      { code: 'HE', name: 'H&E', requiresMarker: 'no' },
      { code: 'IHC', name: 'he', requiresMarker: true },
    ],
    markers: [
      { code: 'P53', name: 'p53' },
      { code: 'TP53', name: 'P53' },
    ],
    differentiations: [],
    annotationMethods: [{ code: 'M' }],
    comment: 'x',
  };
  t.deepEqual(problemsOf(await write(broken)).sort(), [
    'annotationMethods[0].name: must be a name string, it is missing',
    'comment: unknown key',
    'markers[1].name: "P53" is already used by entry [0]',
    'organs[0].code: must be 1 to 8 capital letters or digits, got "lv"',
    'organs[0].colour: unknown key',
    'organs[0].histologies[1].code: "HCC" is already used by entry [0]',
    'organs[0].requiredFields[0]: requires differentiation but differentiations is empty',
    'organs[0].requiredFields[1]: must be one of differentiation, pathologyInfo, annotationMethod, marker, got "grade"',
    'organs[1].histologies: every organ needs at least one histology, got []',
    'organs[1].name: must not be empty, got " "',
    'organs[1].requiredFields: must be a list of field names (may be empty), it is missing',
    'organs[2].code: must be 1 to 8 capital letters or digits, got "ABCDEFGHI"',
    'organs[3].code: "CO" is already used by entry [1]',
    'stains[0].requiresMarker: must be true or false, got "no"',
    'stains[1].name: "he" is already used by entry [0]',
    'version: must be a number, got "1"',
  ]);
});

test('an organ may share a histology code with another organ, and a name may equal its own code', async (t) => {
  const content = minimal();
  content.organs.push({ code: 'CO', name: 'Colon', histologies: [{ code: 'HCC', name: 'HCC' }], requiredFields: [] });
  t.is(loadVocabulary(await write(content)).organs[1]!.histologies[0]!.code, 'HCC');
});

test('a stain that requires a marker needs markers to choose from', async (t) => {
  const content = { ...minimal(), markers: [] };
  t.deepEqual(problemsOf(await write(content)), ['stains[1].requiresMarker: the stain requires a marker but markers is empty']);
});

test('empty lists of organs and stains are refused', async (t) => {
  const content = { ...minimal(), organs: [], stains: [] };
  t.deepEqual(problemsOf(await write(content)), ['organs: must list at least one organ, got []', 'stains: must list at least one stain, got []']);
});

test('a document that is not an object, not JSON or not there says so', async (t) => {
  t.deepEqual(problemsOf(await write('[1, 2]')), ['(top level): must be a JSON object, got [1,2]']);
  const [notJson] = problemsOf(await write('{"version": 1,'));
  t.regex(notJson!, /^not valid JSON \(/);
  const missing = path.join(os.tmpdir(), 'slidebank-no-such-dir', 'vocabularies.json');
  const error = t.throws(() => loadVocabulary(missing), { instanceOf: FatalError });
  t.is(error.message, `vocabulary ${missing}: not found`);
  t.is(error.exitCode, ExitCode.config);
});

const resolves: Array<[VocabularyField, string[], string, string?]> = [
  ['organ', ['LV', 'lv', ' Liver ', 'LIVER'], 'LV'],
  ['organ', ['Pancreas and biliary tract', 'pancreas & biliary tract', 'Pancreas&Biliary Tract', ' PB'], 'PB'],
  ['stain', ['H&E', 'HE', 'h&e', 'H & E', 'H and E', 'he '], 'HE'],
  ['stain', ['IHC', 'ihc'], 'IHC'],
  ['marker', ['Ki-67', 'KI67', 'ki67', 'Ki 67', 'ki_67', 'Ki\u201367'], 'KI67'],
  ['marker', ['p53', 'P53'], 'P53'],
  ['differentiation', ['MD', 'moderately differentiated', 'Moderately-Differentiated', 'Moderately  differentiated'], 'MD'],
  ['differentiation', ['NA', 'not applicable'], 'NA'],
  ['annotationMethod', ['A', 'AI-assisted', 'ai assisted', 'AI Assisted'], 'A'],
  ['annotationMethod', ['m', 'Manual'], 'M'],
  ['histology', ['Hepatocellular carcinoma', 'HCC', 'hcc', 'hepatocellular  CARCINOMA'], 'HCC', 'LV'],
  ['histology', ['Adenocarcinoma', 'adc'], 'ADC', 'CO'],
];
for (const [field, typed, code, organ] of resolves) {
  test(`lookup resolves ${field} ${typed.map((s) => JSON.stringify(s)).join(', ')} to ${code}`, (t) => {
    for (const text of typed) t.deepEqual(lookup(real, field, text, organ), { code }, text);
  });
}

test('lookup refuses unknown values and lists what is allowed', (t) => {
  t.deepEqual(lookup(real, 'stain', 'PAS'), { code: null, reason: 'unknown stain "PAS"; allowed: HE (H&E), IHC' });
  t.deepEqual(lookup(real, 'annotationMethod', 'semi'), { code: null, reason: 'unknown annotation method "semi"; allowed: M (manual), A (AI-assisted)' });
  t.deepEqual(lookup(real, 'histology', 'Sarcoma', 'LV'), {
    code: null,
    reason: 'unknown histology "Sarcoma"; allowed for organ LV: HCC (Hepatocellular carcinoma)',
  });
  // Loose matching ignores separators, not letters: no prefixes, no typos.
  t.is(lookup(real, 'organ', 'Liv').code, null);
  t.is(lookup(real, 'stain', 'HEE').code, null);
  t.is(lookup(real, 'marker', 'Ki6-7x').code, null);
  t.deepEqual(lookup(real, 'marker', '  '), { code: null, reason: 'marker is empty' });
});

test('lookup names the organ a histology belongs to when it is not of the given organ', (t) => {
  t.deepEqual(lookup(real, 'histology', 'Hepatocellular carcinoma', 'CO'), {
    code: null,
    reason: 'histology "Hepatocellular carcinoma" is not a histology of organ CO (it is one of LV); allowed for CO: ADC (Adenocarcinoma)',
  });
  t.deepEqual(lookup(real, 'histology', 'ADC', 'XX'), { code: null, reason: 'histology "ADC" cannot be checked without a known organ' });
});

test('loose matching resolves nothing when it would match more than one entry', async (t) => {
  const content = minimal();
  content.markers = [
    { code: 'CK7', name: 'CK-7' },
    { code: 'CK7A', name: 'CK 7' },
  ];
  const vocabulary = loadVocabulary(await write(content));
  t.deepEqual(lookup(vocabulary, 'marker', 'ck 7'), { code: 'CK7A' }, 'an exact name still wins');
  t.deepEqual(lookup(vocabulary, 'marker', 'ck-7'), { code: 'CK7' }, 'an exact name still wins');
  t.deepEqual(lookup(vocabulary, 'marker', 'c-k 7'), {
    code: null,
    reason: 'marker "c-k 7" is ambiguous: it could be CK7 (CK-7) or CK7A (CK 7)',
  });
});

test('displayName gives the name of a code, or the code when it is unknown', (t) => {
  t.is(displayName(real, 'organ', 'PB'), 'Pancreas and biliary tract');
  t.is(displayName(real, 'stain', 'HE'), 'H&E');
  t.is(displayName(real, 'marker', 'KI67'), 'Ki-67');
  t.is(displayName(real, 'differentiation', 'PD'), 'Poorly differentiated');
  t.is(displayName(real, 'annotationMethod', 'A'), 'AI-assisted');
  t.is(displayName(real, 'histology', 'HCC', 'LV'), 'Hepatocellular carcinoma');
  t.is(displayName(real, 'histology', 'ADC'), 'Adenocarcinoma', 'the organs agree on the name');
  t.is(displayName(real, 'organ', 'XX'), 'XX');
  t.is(displayName(real, 'histology', 'HCC', 'CO'), 'HCC');
});

test('displayName of a histology whose organs disagree needs the organ', (t) => {
  const vocabulary: Vocabulary = {
    ...real,
    organs: [
      { code: 'LV', name: 'Liver', histologies: [{ code: 'CA', name: 'Cholangiocarcinoma' }], requiredFields: [] },
      { code: 'CO', name: 'Colon', histologies: [{ code: 'CA', name: 'Colorectal carcinoma' }], requiredFields: [] },
    ],
  };
  t.is(displayName(vocabulary, 'histology', 'CA'), 'CA');
  t.is(displayName(vocabulary, 'histology', 'CA', 'CO'), 'Colorectal carcinoma');
});
