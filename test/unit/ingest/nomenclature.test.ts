import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {
  formatSlideName,
  isSlideName,
  NOMENCLATURE_VERSION,
  NomenclatureError,
  parseSlideName,
  type NomenclatureReason,
} from '../../../server/ingest/nomenclature.js';
import type { SlideMetadata, Vocabulary } from '../../../server/ingest/types.js';
import { packageRoot } from '../../../server/package-info.js';

const vocabulary = JSON.parse(readFileSync(path.join(packageRoot, 'config', 'vocabularies.json'), 'utf8')) as Vocabulary;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function metadata(fields: Partial<SlideMetadata> = {}): SlideMetadata {
  return {
    organ: 'LV',
    histology: 'HCC',
    stain: 'HE',
    marker: null,
    differentiation: 'MD',
    pathologyInfo: null,
    annotationMethod: null,
    dataset: null,
    ...fields,
  };
}

const fixed = (unique: string) => () => unique;

/** A copy of the real vocabulary with some lists replaced. */
function vocabularyWith(change: Partial<Vocabulary>): Vocabulary {
  return { ...structuredClone(vocabulary), ...change };
}

test('every organ, histology, stain, marker and differentiation of the vocabulary makes a name that parses back', (t) => {
  let count = 0;
  const lengths = new Set<number>();
  for (const organ of vocabulary.organs) {
    for (const histology of organ.histologies) {
      for (const stain of vocabulary.stains) {
        const markers = stain.requiresMarker ? vocabulary.markers.map((entry) => entry.code) : [null];
        for (const marker of markers) {
          for (const differentiation of [...vocabulary.differentiations.map((entry) => entry.code), null]) {
            const fields = { organ: organ.code, histology: histology.code, stain: stain.code, marker, differentiation };
            const name = formatSlideName(metadata(fields), vocabulary);
            const parsed = parseSlideName(name, vocabulary);
            t.like(parsed, { version: 1, ...fields, spare: ['00', '00'] }, name);
            t.regex(parsed.unique, /^[0-9A-HJKMNP-TV-Z]{10}$/);
            t.true(name.endsWith(`-${parsed.unique}`));
            t.regex(name, /^[A-Z0-9_-]+$/, 'ASCII upper case, digits, - and _ only');
            t.is(encodeURIComponent(name), name, 'URL-safe without escaping');
            t.true(isSlideName(name, vocabulary));
            lengths.add(name.length);
            count += 1;
          }
        }
      }
    }
  }
  // 5 organs × 1 histology × (HE + 12 IHC markers) × (5 differentiations + none)
  t.is(count, 5 * 13 * 6);
  t.is(Math.min(...lengths), 33);
  t.is(Math.max(...lengths), 40);
});

test('an injected random part makes names exact', (t) => {
  t.is(NOMENCLATURE_VERSION, 1);
  t.is(formatSlideName(metadata(), vocabulary, fixed('7K3Q9P2M4T')), 'SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4T');
  t.is(
    formatSlideName(metadata({ organ: 'CO', histology: 'ADC', stain: 'IHC', marker: 'KI67', differentiation: null }), vocabulary, fixed('0W8ZC1RJ5E')),
    'SB1-CO-ADC-IHC_KI67-XX-00-00-0W8ZC1RJ5E',
  );
  let calls = 0;
  const counting = () => {
    calls += 1;
    return 'ZZZZZZZZZZ';
  };
  t.is(formatSlideName(metadata(), vocabulary, counting), formatSlideName(metadata(), vocabulary, counting));
  t.is(calls, 2, 'one draw per name');
});

test('fields that are not part of the name leave it unchanged', (t) => {
  const plain = formatSlideName(metadata(), vocabulary, fixed('7K3Q9P2M4T'));
  const rich = formatSlideName(
    metadata({ pathologyInfo: 'Gleason 3+4, pT2', annotationMethod: 'M', dataset: 'KMC-2019-03' }),
    vocabulary,
    fixed('7K3Q9P2M4T'),
  );
  t.is(rich, plain);
});

test('the random part is 10 Crockford base32 characters, unique over many names, all symbols about equally often', (t) => {
  const names = new Set<string>();
  const uniques = new Set<string>();
  const counts = new Map<string, number>();
  const total = 20_000;
  for (let i = 0; i < total; i += 1) {
    const name = formatSlideName(metadata(), vocabulary);
    names.add(name);
    const { unique } = parseSlideName(name);
    uniques.add(unique);
    for (const char of unique) counts.set(char, (counts.get(char) ?? 0) + 1);
  }
  t.is(names.size, total);
  t.is(uniques.size, total);
  t.is([...counts.keys()].sort().join(''), CROCKFORD, 'exactly the 32 symbols, none of I, L, O, U');
  // Each symbol is expected 6,250 times with a standard deviation of about 78; a
  // biased mapping (modulo of a range that is not a multiple of 32) is far outside ±15 %.
  const expected = (total * 10) / 32;
  for (const [char, count] of counts) t.true(Math.abs(count - expected) < expected * 0.15, `${char}: ${count}`);
});

test('naming refuses codes that are not in the vocabulary or do not fit together', (t) => {
  const cases: Array<[Partial<SlideMetadata>, NomenclatureReason, RegExp]> = [
    [{ organ: 'XY' }, 'unknown_organ', /organ "XY" is not in vocabulary version 1, which has LV, CO, PR, PB, KI/],
    [{ organ: 'lv' }, 'unknown_organ', /organ "lv"/],
    [{ organ: 'CO' }, 'histology_not_of_organ', /histology "HCC" is not one of organ CO \(Colon\), which has ADC/],
    [{ stain: 'PAS' }, 'unknown_stain', /stain "PAS" is not in vocabulary version 1, which has HE, IHC/],
    [{ stain: 'IHC' }, 'marker_missing', /stain IHC needs a marker \(one of KI67, P53/],
    [{ marker: 'KI67' }, 'marker_not_allowed', /stain HE takes no marker, but marker "KI67" was given/],
    [{ stain: 'IHC', marker: 'CD3' }, 'unknown_marker', /marker "CD3" is not in vocabulary version 1/],
    [{ differentiation: 'G2' }, 'unknown_differentiation', /differentiation "G2" is not in vocabulary version 1, which has WD, MD, PD, UD, NA \(or none: "XX"\)/],
  ];
  for (const [fields, reason, message] of cases) {
    const error = t.throws(() => formatSlideName(metadata(fields), vocabulary, fixed('7K3Q9P2M4T')), { instanceOf: NomenclatureError, message });
    t.is(error?.reason, reason, JSON.stringify(fields));
    t.regex(error?.message ?? '', /^Cannot name the slide: /);
  }
});

test('naming refuses vocabulary codes a name cannot carry, over-long names and a bad random part', (t) => {
  const refuses = (vocab: Vocabulary, fields: Partial<SlideMetadata>, unique: string, reason: NomenclatureReason, message: RegExp) => {
    const error = t.throws(() => formatSlideName(metadata(fields), vocab, fixed(unique)), { instanceOf: NomenclatureError, message });
    t.is(error?.reason, reason, message.source);
  };
  const dashed = vocabularyWith({ organs: [{ code: 'L-V', name: 'Liver', histologies: [{ code: 'HCC', name: 'HCC' }], requiredFields: [] }] });
  refuses(dashed, { organ: 'L-V' }, '7K3Q9P2M4T', 'unencodable_code', /the organ code "L-V" cannot go into a name/);
  const lower = vocabularyWith({ markers: [{ code: 'Ki67', name: 'Ki-67' }] });
  refuses(lower, { stain: 'IHC', marker: 'Ki67' }, '7K3Q9P2M4T', 'unencodable_code', /the marker code "Ki67" cannot go into a name/);
  const reserved = vocabularyWith({ differentiations: [{ code: 'XX', name: 'Unknown' }] });
  refuses(reserved, { differentiation: 'XX' }, '7K3Q9P2M4T', 'unencodable_code', /"XX" is reserved for "no differentiation"/);
  // 28 characters besides organ and histology (SB1, HE, MD, spares, unique part, separators): 20 + 17 is one too many.
  const organ = 'A'.repeat(20);
  const verbose = (histology: string) =>
    vocabularyWith({ organs: [{ code: organ, name: 'Long', histologies: [{ code: histology, name: 'Long' }], requiredFields: [] }] });
  refuses(verbose('B'.repeat(17)), { organ, histology: 'B'.repeat(17) }, '7K3Q9P2M4T', 'too_long', /would be 65 characters long, at most 64/);
  t.is(formatSlideName(metadata({ organ, histology: 'B'.repeat(16) }), verbose('B'.repeat(16)), fixed('7K3Q9P2M4T')).length, 64);

  for (const [unique, message] of [
    ['7K3Q9P2M4', /has 9 characters, not 10/],
    ['7K3Q9P2M4TX', /has 11 characters, not 10/],
    ['7k3q9p2m4t', /contains "k"/],
    ['7K3Q9P2M4U', /contains "U", which is not Crockford base32/],
    ['7K3Q-P2M4T', /contains "-"/],
  ] as const) {
    refuses(vocabulary, {}, unique, 'bad_unique', message);
  }
});

test('malformed names are rejected with what is wrong', (t) => {
  const good = 'SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4T';
  t.notThrows(() => parseSlideName(good));
  const cases: Array<[string, NomenclatureReason, RegExp]> = [
    ['', 'empty', /it is empty/],
    [`${good}-${'0'.repeat(31)}`, 'too_long', /it is 65 characters long, slide names have at most 64/],
    [`${good}.svs`, 'bad_character', /contains "\." \(U\+002E\) at position 34; .*without a file extension/],
    ['SB1-LV-HCC-H E-MD-00-00-7K3Q9P2M4T', 'bad_character', /contains " " \(U\+0020\) at position 13/],
    ['SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4T\n', 'bad_character', /contains "\\n" \(U\+000A\) at position 34/],
    ['SB1-LV-HCC-HÉ-MD-00-00-7K3Q9P2M4T', 'bad_character', /contains "É" \(U\+00C9\) at position 13/],
    ['SB1/LV-HCC-HE-MD-00-00-7K3Q9P2M4T', 'bad_character', /contains "\/" \(U\+002F\) at position 4/],
    ['sb1-lv-hcc-he-md-00-00-7k3q9p2m4t', 'lower_case', /lower-case letters/],
    ['SB1-LV-HCC-HE-MD-00-00-7K3Q9p2M4T', 'lower_case', /lower-case letters/],
    ['LV-HCC-HE-MD-00-00-7K3Q9P2M4T', 'no_version', /does not start with a scheme version such as "SB1-"/],
    ['-SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4T', 'no_version', /scheme version/],
    ['SB2-LV-HCC-HE-MD-00-00-7K3Q9P2M4T', 'unknown_version', /scheme version "SB2" is unknown; this Slidebank reads SB1/],
    ['SB01-LV-HCC-HE-MD-00-00-7K3Q9P2M4T', 'unknown_version', /"SB01"/],
    ['SB1-LV-HCC-HE-MD-00-7K3Q9P2M4T', 'field_count', /it has 7 fields separated by "-", SB1 names have 8/],
    ['SB1-LV-HCC-HE-MD-00-00-00-7K3Q9P2M4T', 'field_count', /it has 9 fields/],
    ['SB1', 'field_count', /it has 1 fields/],
    ['SB1-LV--HE-MD-00-00-7K3Q9P2M4T', 'bad_field', /the histology field is empty/],
    ['SB1-LV-HCC-HE-MD-00-00-', 'bad_field', /the unique part field is empty/],
    ['SB1-L_V-HCC-HE-MD-00-00-7K3Q9P2M4T', 'bad_field', /the organ field "L_V" is not a code/],
    ['SB1-LV-HCC-HE-M_D-00-00-7K3Q9P2M4T', 'bad_field', /the differentiation field "M_D" is not a code/],
    ['SB1-LV-HCC-IHC_KI67_P53-MD-00-00-7K3Q9P2M4T', 'bad_field', /the stain field "IHC_KI67_P53" is neither/],
    ['SB1-LV-HCC-IHC_-MD-00-00-7K3Q9P2M4T', 'bad_field', /the stain field "IHC_" is neither/],
    ['SB1-LV-HCC-_KI67-MD-00-00-7K3Q9P2M4T', 'bad_field', /the stain field "_KI67" is neither/],
    ['SB1-LV-HCC-HE-MD-01-00-7K3Q9P2M4T', 'bad_spare', /spare slot 1 is "01"; in SB1 both spare slots are "00"/],
    ['SB1-LV-HCC-HE-MD-00-0-7K3Q9P2M4T', 'bad_spare', /spare slot 2 is "0"/],
    ['SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4', 'bad_unique', /the unique part "7K3Q9P2M4" has 9 characters, not 10/],
    ['SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4TT', 'bad_unique', /has 11 characters/],
    ['SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4O', 'bad_unique', /contains "O", which is not Crockford base32/],
    ['SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4_', 'bad_unique', /contains "_"/],
  ];
  for (const [name, reason, message] of cases) {
    const error = t.throws(() => parseSlideName(name), { instanceOf: NomenclatureError, message }, JSON.stringify(name));
    t.is(error?.reason, reason, JSON.stringify(name));
    t.regex(error?.message ?? '', /^Not a slide name: /);
    t.false(isSlideName(name));
  }
});

test('error messages never repeat the whole input', (t) => {
  // An original file name passed by mistake must not end up whole in a log.
  for (const original of ['S12-34567 KIM Jisoo.svs', 'SB1-LV-HCC-HE-MD-00-00-HOSPNO1234', 'S12-34567-KIMJISOO']) {
    const error = t.throws(() => parseSlideName(original), { instanceOf: NomenclatureError });
    t.false(error?.message.includes(original), error?.message);
  }
});

test('without a vocabulary only the syntax is checked', (t) => {
  const name = 'SB1-ZZ-QQQ-PAS_CD3-G2-00-00-7K3Q9P2M4T';
  t.deepEqual(parseSlideName(name), {
    version: 1,
    organ: 'ZZ',
    histology: 'QQQ',
    stain: 'PAS',
    marker: 'CD3',
    differentiation: 'G2',
    spare: ['00', '00'],
    unique: '7K3Q9P2M4T',
  });
  t.true(isSlideName(name));
  t.false(isSlideName(name, vocabulary));
});

test('with a vocabulary every code is checked against it', (t) => {
  const cases: Array<[string, NomenclatureReason, RegExp]> = [
    ['SB1-XY-HCC-HE-MD-00-00-7K3Q9P2M4T', 'unknown_organ', /organ "XY" is not in vocabulary version 1/],
    ['SB1-CO-HCC-HE-MD-00-00-7K3Q9P2M4T', 'histology_not_of_organ', /histology "HCC" is not one of organ CO \(Colon\), which has ADC/],
    ['SB1-LV-ADC-HE-MD-00-00-7K3Q9P2M4T', 'histology_not_of_organ', /histology "ADC" is not one of organ LV \(Liver\), which has HCC/],
    ['SB1-LV-HCC-PAS-MD-00-00-7K3Q9P2M4T', 'unknown_stain', /stain "PAS"/],
    ['SB1-LV-HCC-IHC-MD-00-00-7K3Q9P2M4T', 'marker_missing', /stain IHC needs a marker/],
    ['SB1-LV-HCC-HE_KI67-MD-00-00-7K3Q9P2M4T', 'marker_not_allowed', /stain HE takes no marker, but marker "KI67" was given/],
    ['SB1-LV-HCC-IHC_CD3-MD-00-00-7K3Q9P2M4T', 'unknown_marker', /marker "CD3" is not in vocabulary version 1/],
    ['SB1-LV-HCC-HE-G2-00-00-7K3Q9P2M4T', 'unknown_differentiation', /differentiation "G2"/],
  ];
  for (const [name, reason, message] of cases) {
    t.notThrows(() => parseSlideName(name), `${name} is well-formed`);
    const error = t.throws(() => parseSlideName(name, vocabulary), { instanceOf: NomenclatureError, message }, name);
    t.is(error?.reason, reason, name);
    t.regex(error?.message ?? '', /^Slide name does not fit the vocabulary: /);
  }
});

test('isSlideName answers for any value and lets unexpected errors through', (t) => {
  t.true(isSlideName('SB1-KI-RCC-HE-XX-00-00-0000000000', vocabulary));
  for (const value of [undefined, null, 42, {}, ['SB1-KI-RCC-HE-XX-00-00-0000000000']]) t.false(isSlideName(value));
  const broken = { ...vocabulary, organs: null } as unknown as Vocabulary;
  t.throws(() => isSlideName('SB1-KI-RCC-HE-XX-00-00-0000000000', broken), { instanceOf: TypeError });
});

test('the examples in docs/nomenclature.md behave as the page says', (t) => {
  const page = readFileSync(path.join(packageRoot, 'docs', 'nomenclature.md'), 'utf8');
  let valid = 0;
  let rejected = 0;
  for (const line of page.split('\n')) {
    const row = /^\| `([^`]+)` \| (.*) \|$/.exec(line);
    if (!row) continue;
    const [, name, said] = row as unknown as [string, string, string];
    const reason = /^`([a-z_]+)`/.exec(said)?.[1];
    if (reason === undefined) {
      t.notThrows(() => parseSlideName(name, vocabulary), name);
      valid += 1;
    } else {
      // Vocabulary reasons need the vocabulary; syntax reasons come without one as well.
      t.like(t.throws(() => parseSlideName(name, vocabulary), { instanceOf: NomenclatureError }, name), { reason }, name);
      rejected += 1;
    }
  }
  t.is(valid, 4);
  t.is(rejected, 18);
});
