import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import {
  readMetadataSheet,
  sheetKey,
  type EligibilityRules,
  type MetadataSheet,
  type SheetRow,
} from '../../../server/ingest/metadata-sheet.js';
import { loadVocabulary } from '../../../server/catalog/vocabulary.js';
import { packageRoot } from '../../../server/package-info.js';

const vocabulary = loadVocabulary(path.join(packageRoot, 'config', 'vocabularies.json'));
/** The shipped consent rule (docs/domain.md, "Eligibility at ingest"), on a fixed day so that "in the future" does not drift. */
const rules: EligibilityRules = { consentRequiredFrom: '2013-02', now: new Date(2024, 5, 15) };

async function write(content: string | Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-sheet-'));
  const file = path.join(dir, 'metadata.csv');
  await writeFile(file, content);
  return file;
}

async function read(content: string | Buffer, withRules: EligibilityRules = rules): Promise<MetadataSheet> {
  return readMetadataSheet(await write(content), vocabulary, withRules);
}

function rowOf(sheet: MetadataSheet, key: string): SheetRow {
  const row = sheet.rows.get(key);
  if (row === undefined) throw new Error(`no row ${key}; rows: ${[...sheet.rows.keys()].join(', ')}`);
  return row;
}

const HEADER = 'file,organ,histology,stain,marker,differentiation,pathology_info,annotation_method,dataset,collection_date,consent';

test('a good sheet resolves every row to codes and keeps collection date and consent apart', async (t) => {
  const sheet = await read(
    [
      HEADER,
      'S-001.svs,Liver,Hepatocellular carcinoma,H&E,,Moderately differentiated,,manual,PAIP 2019,2015-06-03,yes',
      's-002,LV,HCC,IHC,Ki-67,WD,  portal vein invasion  ,AI-assisted,,2012,',
      'S-003.SVS,prostate,adenocarcinoma,he,,,Gleason 3+4; pT2,,,2013-01,no',
      'S-004.svs,Kidney,RCC,HE,,,,,,,1',
    ].join('\n'),
  );
  t.deepEqual(sheet.problems, []);
  t.deepEqual([...sheet.rows.keys()], ['s-001', 's-002', 's-003', 's-004']);
  t.deepEqual(rowOf(sheet, 's-001'), {
    line: 2,
    file: 'S-001.svs',
    problems: [],
    collected: { year: 2015, month: 6 },
    consent: true,
    metadata: {
      organ: 'LV',
      histology: 'HCC',
      stain: 'HE',
      marker: null,
      differentiation: 'MD',
      pathologyInfo: null,
      annotationMethod: 'M',
      dataset: 'PAIP 2019',
    },
  });
  t.like(rowOf(sheet, 's-002'), {
    line: 3,
    collected: { year: 2012 },
    consent: null,
    metadata: { stain: 'IHC', marker: 'KI67', differentiation: 'WD', pathologyInfo: 'portal vein invasion', annotationMethod: 'A', dataset: null },
  });
  t.like(rowOf(sheet, 's-003'), {
    collected: { year: 2013, month: 1 },
    consent: false,
    metadata: { organ: 'PR', histology: 'ADC', pathologyInfo: 'Gleason 3+4; pT2' },
  });
  t.like(rowOf(sheet, 's-004'), { collected: null, consent: true, metadata: { organ: 'KI', differentiation: null } });
});

test('a semicolon sheet with BOM, CRLF, blank lines, loose header names and quoted cells reads the same', async (t) => {
  const sheet = await read(
    [
      '\uFEFFFile; ORGAN ;Histology;Stain;Pathology Info;Collection  Date;consent;Differentiation',
      '',
      'a.svs;LV;HCC;HE;"size 3; margin clear";2014-03;yes;PD',
      ';;;;;;;',
      '   ',
      'b.svs;KI;RCC;HE;"two',
      'lines";;yes;',
      '',
    ].join('\r\n'),
  );
  t.deepEqual(sheet.problems, []);
  t.like(rowOf(sheet, 'a'), {
    line: 3,
    consent: true,
    metadata: { organ: 'LV', differentiation: 'PD', pathologyInfo: 'size 3; margin clear' },
  });
  t.like(rowOf(sheet, 'b'), { line: 6, problems: [], metadata: { organ: 'KI', pathologyInfo: 'two\nlines' } });
  t.is(sheet.rows.size, 2);
});

/** One row, the good base values overridden by `cells`; the result is that row. */
async function checked(cells: Record<string, string>, withRules: EligibilityRules = rules): Promise<SheetRow> {
  const base: Record<string, string> = {
    file: 'x.svs',
    organ: 'LV',
    histology: 'HCC',
    stain: 'HE',
    marker: '',
    differentiation: 'WD',
    pathology_info: '',
    annotation_method: '',
    dataset: '',
    collection_date: '2015-06',
    consent: 'yes',
    ...cells,
  };
  const quoted = (value: string) => `"${value.replace(/"/g, '""')}"`;
  const sheet = await read(`${Object.keys(base).join(',')}\n${Object.values(base).map(quoted).join(',')}\n`, withRules);
  return rowOf(sheet, 'x');
}

async function refused(cells: Record<string, string>, withRules: EligibilityRules = rules): Promise<string[]> {
  const row = await checked(cells, withRules);
  if (row.metadata !== undefined && row.problems.length > 0) throw new Error('a refused row must have no metadata');
  return row.problems;
}

const ORGANS = 'LV (Liver), CO (Colon), PR (Prostate), PB (Pancreas and biliary tract), KI (Kidney)';
const MARKERS = 'KI67 (Ki-67), P53 (p53), CK7, CK20, CDX2, HER2, AMACR, PAX8, MLH1, MSH2, MSH6, PMS2';
const rowCases: Array<[string, Record<string, string>, string[]]> = [
  ['unknown organ', { organ: 'Lung' }, [`unknown organ "Lung"; allowed: ${ORGANS}`]],
  ['unknown histology', { histology: 'Sarcoma' }, ['unknown histology "Sarcoma"; allowed for organ LV: HCC (Hepatocellular carcinoma)']],
  [
    'histology of another organ',
    { organ: 'Colon', histology: 'HCC' },
    ['histology "HCC" is not a histology of organ CO (it is one of LV); allowed for CO: ADC (Adenocarcinoma)'],
  ],
  ['unknown stain', { stain: 'PAS' }, ['unknown stain "PAS"; allowed: HE (H&E), IHC']],
  ['IHC without a marker', { stain: 'IHC' }, ['rule: stain IHC requires a marker']],
  ['H&E with a marker', { stain: 'H&E', marker: 'Ki-67' }, ['rule: stain HE takes no marker; got "Ki-67"']],
  ['unknown marker', { stain: 'IHC', marker: 'BRAF' }, [`unknown marker "BRAF"; allowed: ${MARKERS}`]],
  [
    'unknown differentiation',
    { differentiation: 'G2' },
    [
      'unknown differentiation "G2"; allowed: WD (Well differentiated), MD (Moderately differentiated), PD (Poorly differentiated), UD (Undifferentiated), NA (Not applicable)',
    ],
  ],
  ['unknown annotation method', { annotation_method: 'auto' }, ['unknown annotation method "auto"; allowed: M (manual), A (AI-assisted)']],
  ['organ requires differentiation', { differentiation: '' }, ['rule: organ LV requires differentiation']],
  ['organ requires pathology_info', { organ: 'PR', histology: 'ADC', differentiation: '' }, ['rule: organ PR requires pathology_info']],
  [
    'empty organ, histology and stain',
    { organ: '', histology: '', stain: '' },
    [
      'organ is empty; every slide needs organ, histology and stain',
      'histology is empty; every slide needs organ, histology and stain',
      'stain is empty; every slide needs organ, histology and stain',
    ],
  ],
  ['pathology_info too long', { pathology_info: 'x'.repeat(2001) }, ['pathology_info is 2001 characters long; at most 2000 are allowed']],
  ['dataset too long', { dataset: 'd'.repeat(101) }, ['dataset is 101 characters long; at most 100 are allowed']],
  ['collection date in day-month-year', { collection_date: '03.06.2015' }, ['collection_date "03.06.2015" is not a date; write YYYY, YYYY-MM or YYYY-MM-DD']],
  ['collection month 13', { collection_date: '2015-13' }, ['collection_date "2015-13" is not a date; write YYYY, YYYY-MM or YYYY-MM-DD']],
  ['collection on 30 February', { collection_date: '2015-02-30' }, ['collection_date "2015-02-30" is not a date; write YYYY, YYYY-MM or YYYY-MM-DD']],
  ['collection month without zero', { collection_date: '2015-6' }, ['collection_date "2015-6" is not a date; write YYYY, YYYY-MM or YYYY-MM-DD']],
  ['collection next month', { collection_date: '2024-07' }, ['collection_date "2024-07" is in the future']],
  ['collection tomorrow', { collection_date: '2024-06-16' }, ['collection_date "2024-06-16" is in the future']],
  ['collection next year', { collection_date: '2025' }, ['collection_date "2025" is in the future']],
  ['consent neither yes nor no', { consent: 'maybe' }, ['consent "maybe" must be yes, no, true, false, 1 or 0 (empty when unknown)']],
  [
    'collected after the rule, consent not recorded',
    { collection_date: '2015-06', consent: '' },
    ['rule: consent required for specimens collected from 2013-02; collected 2015-06, consent not recorded'],
  ],
  [
    'collected in the rule month, consent refused',
    { collection_date: '2013-02-01', consent: 'no' },
    ['rule: consent required for specimens collected from 2013-02; collected 2013-02, consent recorded as no'],
  ],
  [
    'collected in the rule year, month unknown',
    { collection_date: '2013', consent: '' },
    ['rule: consent required for specimens collected from 2013-02; collected 2013 (month not recorded), consent not recorded'],
  ],
  [
    'collected in a later year',
    { collection_date: '2014', consent: 'false' },
    ['rule: consent required for specimens collected from 2013-02; collected 2014, consent recorded as no'],
  ],
  [
    'collection date not recorded',
    { collection_date: '', consent: '' },
    ['rule: consent required for specimens collected from 2013-02; collection date not recorded, consent not recorded'],
  ],
  [
    'several problems at once, in column order',
    { organ: 'liver', histology: 'HCC', stain: 'IHC', differentiation: '', collection_date: '2016-01', consent: '0' },
    [
      'rule: stain IHC requires a marker',
      'rule: organ LV requires differentiation',
      'rule: consent required for specimens collected from 2013-02; collected 2016-01, consent recorded as no',
    ],
  ],
];
for (const [title, cells, problems] of rowCases) {
  test(`row refused: ${title}`, async (t) => {
    t.deepEqual(await refused(cells), problems);
  });
}

test('rows at the edges of the rules are eligible', async (t) => {
  const eligible = async (cells: Record<string, string>, withRules: EligibilityRules = rules) => {
    const row = await checked(cells, withRules);
    t.deepEqual(row.problems, [], JSON.stringify(cells));
    t.not(row.metadata, undefined, JSON.stringify(cells));
    return row;
  };
  await eligible({ collection_date: '2013-01-31', consent: '' });
  await eligible({ collection_date: '2012', consent: '' });
  await eligible({ collection_date: '2024-06-15', consent: 'Yes' });
  await eligible({ collection_date: '2024-06', consent: 'TRUE' });
  await eligible({ collection_date: '2024', consent: '1' });
  await eligible({ collection_date: '', consent: 'yes' });
  await eligible({ collection_date: '2020-02-29', consent: 'yes' });
  await eligible({ collection_date: '2016', consent: '' }, { ...rules, consentRequiredFrom: '' });
  await eligible({ collection_date: '', consent: 'no' }, { ...rules, consentRequiredFrom: '' });
  await eligible({ differentiation: 'NA' });
  await eligible({ stain: 'IHC', marker: 'p53' });
  const long = await eligible({ pathology_info: `  ${'y'.repeat(2000)}  ` });
  t.is(long.metadata?.pathologyInfo, 'y'.repeat(2000));
  const january = await eligible({ collection_date: '2013' }, { ...rules, consentRequiredFrom: '2013-01' });
  t.deepEqual(january.collected, { year: 2013 });
});

test('a year-only date in the first year of a January rule is named without "month not recorded"', async (t) => {
  t.deepEqual(await refused({ collection_date: '2013', consent: '' }, { ...rules, consentRequiredFrom: '2013-01' }), [
    'rule: consent required for specimens collected from 2013-01; collected 2013, consent not recorded',
  ]);
});

test('an unknown column is a sheet problem, and refuses the rows whose value it would lose', async (t) => {
  const sheet = await read(['file,organ,histology,stain,diferentiation,Notes', 'a.svs,LV,HCC,HE,WD,', 'b.svs,KI,RCC,HE,,'].join('\n'));
  t.deepEqual(sheet.problems, [
    {
      line: 1,
      column: 'diferentiation',
      message:
        'unknown column "diferentiation" (did you mean differentiation?); the columns are file, organ, histology, stain, marker, differentiation, pathology_info, annotation_method, dataset, collection_date, consent',
    },
    {
      line: 1,
      column: 'Notes',
      message:
        'unknown column "Notes"; the columns are file, organ, histology, stain, marker, differentiation, pathology_info, annotation_method, dataset, collection_date, consent',
    },
  ]);
  t.deepEqual(rowOf(sheet, 'a').problems, [
    'column "diferentiation" is unknown; its value "WD" would be lost',
    'rule: organ LV requires differentiation',
    'rule: consent required for specimens collected from 2013-02; collection date not recorded, consent not recorded',
  ]);
  t.is(rowOf(sheet, 'a').metadata, undefined);
  const b = await read(['file,organ,histology,stain,diferentiation,consent', 'b.svs,KI,RCC,HE,,yes'].join('\n'));
  t.deepEqual(rowOf(b, 'b').problems, [], 'nothing is lost where the unknown column is empty');
});

test('a repeated column, an unnamed column and a field beyond the header lose nothing silently', async (t) => {
  const sheet = await read(['file,organ,histology,stain,Organ,,consent', 'a.svs,LV,HCC,HE,CO,x,yes,extra', 'b.svs,KI,RCC,HE,,,yes'].join('\n'));
  t.deepEqual(sheet.problems, [{ line: 1, column: 'Organ', message: 'column organ appears twice (columns 2 and 5)' }]);
  t.deepEqual(rowOf(sheet, 'a').problems, [
    'column organ appears twice and column 5 is not read; its value "CO" would be lost',
    'column 6 has no header; its value "x" would be lost',
    'field 8 is beyond the header; its value "extra" would be lost',
    'rule: organ LV requires differentiation',
  ]);
  t.deepEqual(rowOf(sheet, 'b').problems, []);
});

test('a slide listed twice is refused, whatever the spelling of its file name', async (t) => {
  const sheet = await read(
    [HEADER, 'Case-7.svs,KI,RCC,HE,,,,,,,yes', 'c.svs,KI,RCC,HE,,,,,,,yes', 'scans/CASE-7,KI,RCC,HE,,,,,,,yes'].join('\n'),
  );
  t.deepEqual(sheet.problems, [{ line: 4, column: 'file', message: '"scans/CASE-7" is already listed on line 2; a slide must have one row' }]);
  t.deepEqual(rowOf(sheet, 'case-7').problems, ['the slide is listed again on line 4; a slide must have one row']);
  t.is(rowOf(sheet, 'case-7').metadata, undefined);
  t.is(rowOf(sheet, 'case-7').file, 'Case-7.svs');
  t.not(rowOf(sheet, 'c').metadata, undefined, 'the other rows carry on');
});

test('a row without a file name is a sheet problem', async (t) => {
  const sheet = await read([HEADER, ',KI,RCC,HE,,,,,,,yes', '.svs,KI,RCC,HE,,,,,,,yes'].join('\n'));
  t.deepEqual(sheet.problems, [
    { line: 2, column: 'file', message: 'file is empty; every row must name its slide' },
    { line: 3, column: 'file', message: 'file ".svs" names no slide' },
  ]);
  t.is(sheet.rows.size, 0);
});

test('a header without rows gives an empty sheet', async (t) => {
  t.deepEqual(await read(`${HEADER}\n`), { rows: new Map(), problems: [] });
});

test('sheetKey finds a slide by its base name in any case', (t) => {
  t.is(sheetKey('S-001.svs'), 's-001');
  t.is(sheetKey(' batch 3/S-001.SVS '), 's-001');
  t.is(sheetKey('C:\\scans\\b.tiff'), 'b');
  t.is(sheetKey('case.v2'), 'case.v2', 'only a slide extension is taken off');
  t.is(sheetKey('case.xml'), 'case.xml');
});

const sheetFailures: Array<[string, string | Buffer, RegExp]> = [
  ['an empty file', '', /is empty; it needs a header row naming at least the file column$/],
  ['blank lines only', '\n \n;;\n', /is empty; it needs a header row/],
  ['no file column', 'slide,organ\na.svs,LV\n', /has no "file" column; its header reads "slide, organ"$/],
  ['a text file', 'These are the slides of March.\nAll liver.\n', /has no "file" column; its header reads "These are the slides of March."$/],
  ['an Excel workbook', Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.from('[Content_Types].xml')]), /is an Excel workbook or other ZIP file, not CSV; save it from the spreadsheet as "CSV UTF-8"$/],
  ['an old Excel workbook', Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), /is an old Excel workbook, not CSV/],
  ['UTF-16 text', Buffer.from('\uFEFFfile,organ\n', 'utf16le'), /is UTF-16 text, not UTF-8/],
  ['a binary file', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00]), /is a binary file, not CSV$/],
  ['Windows-1252 text', Buffer.from('file,organ,pathology_info\na.svs,LV,f\u00fcnf\n', 'latin1'), /is not UTF-8 text \(perhaps Windows-1252\)/],
  ['an unclosed quote', 'file,organ\n"a.svs,LV\n', /is not a readable CSV: Quote Not Closed/],
];
for (const [title, content, message] of sheetFailures) {
  test(`the whole sheet fails on ${title}`, async (t) => {
    const file = await write(content);
    const error = await t.throwsAsync(readMetadataSheet(file, vocabulary, rules));
    t.true(error.message.startsWith(`metadata sheet ${file} `), error.message);
    t.regex(error.message, message);
  });
}

test('a missing sheet and a malformed consent rule fail clearly', async (t) => {
  const missing = path.join(os.tmpdir(), 'slidebank-no-such-dir', 'metadata.csv');
  await t.throwsAsync(readMetadataSheet(missing, vocabulary, rules), { message: `metadata sheet ${missing}: not found` });
  const file = await write(`${HEADER}\n`);
  await t.throwsAsync(readMetadataSheet(file, vocabulary, { consentRequiredFrom: '2013-2' }), {
    message: 'consentRequiredFrom must be a month as YYYY-MM or empty, got "2013-2"',
  });
});
