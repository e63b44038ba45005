import { randomBytes } from 'node:crypto';
import type { SlideMetadata, Vocabulary, VocabularyEntry } from './types.js';

/**
 * Slide names (docs/nomenclature.md): every published slide gets a fresh name
 * that encodes its diagnostic fields and a random unique part, and nothing
 * from the file it came from.
 *
 *     SB1-LV-HCC-HE-MD-00-00-7K3Q9P2M4T
 *     SB1-CO-ADC-IHC_KI67-XX-00-00-0W8ZC1RJ5E
 *     ver org hist stain  diff spare spare unique
 *
 * Fields are separated by "-"; the marker is joined to its stain by "_"
 * (both URL-unreserved and safe in file names everywhere, unlike "." which
 * file tools read as an extension). "XX" is an absent differentiation, "00"
 * a spare slot this version leaves empty; a version that fills the spare
 * slots or changes a field is a new prefix (SB2), and the parser dispatches
 * on the prefix.
 */

export const NOMENCLATURE_VERSION = 1;

const PREFIX = `SB${NOMENCLATURE_VERSION}`;
const FIELD_SEPARATOR = '-';
const MARKER_SEPARATOR = '_';
const NO_DIFFERENTIATION = 'XX';
const SPARE = '00';
/** Crockford base32: digits and upper-case letters without I, L, O and U. */
const UNIQUE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const UNIQUE_LENGTH = 10;
const MAX_LENGTH = 64;
const FIELDS = ['version', 'organ', 'histology', 'stain', 'differentiation', 'spare slot 1', 'spare slot 2', 'unique part'] as const;
const CODE = /^[A-Z0-9]+$/;
const SHAPE = `${PREFIX}-organ-histology-stain[_marker]-differentiation-${SPARE}-${SPARE}-unique`;

export type NomenclatureReason =
  // the shape of a name
  | 'empty'
  | 'too_long'
  | 'bad_character'
  | 'lower_case'
  | 'no_version'
  | 'unknown_version'
  | 'field_count'
  | 'bad_field'
  | 'bad_spare'
  | 'bad_unique'
  // its codes against a vocabulary
  | 'unknown_organ'
  | 'histology_not_of_organ'
  | 'unknown_stain'
  | 'marker_missing'
  | 'marker_not_allowed'
  | 'unknown_marker'
  | 'unknown_differentiation'
  /** A vocabulary code that a name cannot carry (not upper-case letters and digits, or the reserved "XX"). */
  | 'unencodable_code';

/**
 * A name that cannot be made or read. The message says what is wrong with
 * which part; it quotes single fields but never the whole input, which may be
 * an original file name that must not reach a log.
 */
export class NomenclatureError extends Error {
  readonly reason: NomenclatureReason;

  constructor(reason: NomenclatureReason, message: string) {
    super(message);
    this.name = 'NomenclatureError';
    this.reason = reason;
  }
}

export interface ParsedSlideName {
  version: number;
  organ: string;
  histology: string;
  stain: string;
  marker: string | null;
  differentiation: string | null;
  /** Reserved for diagnostic information a later version adds; "00" in version 1. */
  spare: [string, string];
  unique: string;
}

type Codes = Pick<SlideMetadata, 'organ' | 'histology' | 'stain' | 'marker' | 'differentiation'>;

/**
 * The name for a slide with these diagnostic fields. `random` gives the
 * unique part (tests inject one); by default 10 Crockford base32 characters
 * from the system's CSPRNG. Only organ, histology, stain, marker and
 * differentiation go into the name. Whether an organ requires a
 * differentiation is the eligibility checks' business, not the name's.
 */
export function formatSlideName(metadata: SlideMetadata, vocabulary: Vocabulary, random: () => string = randomUniquePart): string {
  const lead = 'Cannot name the slide: ';
  checkCodes(metadata, vocabulary, lead);

  const { organ, histology, stain, marker, differentiation } = metadata;
  for (const [field, code] of [['organ', organ], ['histology', histology], ['stain', stain], ['marker', marker], ['differentiation', differentiation]] as const) {
    if (code !== null && !CODE.test(code)) {
      throw new NomenclatureError('unencodable_code', `${lead}the ${field} code "${code}" cannot go into a name, which takes only upper-case letters and digits`);
    }
  }
  if (differentiation === NO_DIFFERENTIATION) {
    throw new NomenclatureError('unencodable_code', `${lead}the differentiation code "${NO_DIFFERENTIATION}" is reserved for "no differentiation" in names`);
  }

  const unique = random();
  checkUnique(unique, `${lead}the random part is wrong: `);
  const name = [
    PREFIX,
    organ,
    histology,
    marker === null ? stain : `${stain}${MARKER_SEPARATOR}${marker}`,
    differentiation ?? NO_DIFFERENTIATION,
    SPARE,
    SPARE,
    unique,
  ].join(FIELD_SEPARATOR);
  if (name.length > MAX_LENGTH) {
    throw new NomenclatureError('too_long', `${lead}the name would be ${name.length} characters long, at most ${MAX_LENGTH} are allowed; shorten the vocabulary codes`);
  }
  return name;
}

/**
 * The fields of a slide name. Without a vocabulary only the syntax is
 * checked; with one, also that every code is in it and fits the others
 * (histology of that organ, a marker exactly when the stain needs one).
 * Names are upper case: compare or look up a typed-in name upper-cased.
 */
export function parseSlideName(name: string, vocabulary?: Vocabulary): ParsedSlideName {
  const lead = 'Not a slide name: ';
  const fail = (reason: NomenclatureReason, what: string) => new NomenclatureError(reason, lead + what);

  if (name.length === 0) throw fail('empty', 'it is empty');
  if (name.length > MAX_LENGTH) throw fail('too_long', `it is ${name.length} characters long, slide names have at most ${MAX_LENGTH}`);
  let position = 0;
  for (const char of name) {
    position += 1;
    if (/[A-Za-z0-9_-]/.test(char)) continue;
    const codePoint = `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    const hint = char === '.' ? ' (pass the name without a file extension)' : '';
    throw fail('bad_character', `it contains ${JSON.stringify(char)} (${codePoint}) at position ${position}; names use only A-Z, 0-9, "-" and "_"${hint}`);
  }
  if (/[a-z]/.test(name)) throw fail('lower_case', 'it contains lower-case letters; slide names are upper case (upper-case a typed-in name before looking it up)');

  const fields = name.split(FIELD_SEPARATOR);
  const version = fields[0]!;
  if (!/^SB\d+$/.test(version)) throw fail('no_version', `it does not start with a scheme version such as "${PREFIX}-"`);
  if (version !== PREFIX) throw fail('unknown_version', `scheme version "${version}" is unknown; this Slidebank reads ${PREFIX}`);
  if (fields.length !== FIELDS.length) {
    throw fail('field_count', `it has ${fields.length} fields separated by "-", ${PREFIX} names have ${FIELDS.length}: ${SHAPE}`);
  }
  const [, organ, histology, stainField, differentiation, spare1, spare2, unique] = fields as [string, string, string, string, string, string, string, string];

  const empty = fields.indexOf('');
  if (empty >= 0) throw fail('bad_field', `the ${FIELDS[empty]} field is empty`);
  for (const [index, field] of [[1, organ], [2, histology], [4, differentiation]] as const) {
    if (!CODE.test(field)) throw fail('bad_field', `the ${FIELDS[index]} field "${field}" is not a code (upper-case letters and digits)`);
  }
  const stainParts = stainField.split(MARKER_SEPARATOR);
  if (stainParts.length > 2 || !stainParts.every((part) => CODE.test(part))) {
    throw fail('bad_field', `the stain field "${stainField}" is neither a stain code nor a stain and marker joined by "_" such as "IHC_KI67"`);
  }
  for (const [index, spare] of [[1, spare1], [2, spare2]] as const) {
    if (spare !== SPARE) throw fail('bad_spare', `spare slot ${index} is "${spare}"; in ${PREFIX} both spare slots are "${SPARE}"`);
  }
  checkUnique(unique, lead);

  const parsed: ParsedSlideName = {
    version: NOMENCLATURE_VERSION,
    organ,
    histology,
    stain: stainParts[0]!,
    marker: stainParts[1] ?? null,
    differentiation: differentiation === NO_DIFFERENTIATION ? null : differentiation,
    spare: [spare1, spare2],
    unique,
  };
  if (vocabulary) checkCodes(parsed, vocabulary, 'Slide name does not fit the vocabulary: ');
  return parsed;
}

/** Whether `text` is a well-formed slide name (and, given a vocabulary, fits it). */
export function isSlideName(text: unknown, vocabulary?: Vocabulary): boolean {
  if (typeof text !== 'string') return false;
  try {
    parseSlideName(text, vocabulary);
    return true;
  } catch (error) {
    if (error instanceof NomenclatureError) return false;
    throw error;
  }
}

function randomUniquePart(): string {
  // 256 is a multiple of 32, so the low 5 bits of each byte are uniform.
  let unique = '';
  for (const byte of randomBytes(UNIQUE_LENGTH)) unique += UNIQUE_ALPHABET.charAt(byte & 31);
  return unique;
}

function checkUnique(unique: string, lead: string): void {
  const alphabet = 'Crockford base32: 0-9 and A-Z without I, L, O and U';
  const stray = [...unique].find((char) => !UNIQUE_ALPHABET.includes(char));
  if (stray !== undefined) {
    throw new NomenclatureError('bad_unique', `${lead}the unique part "${unique}" contains ${JSON.stringify(stray)}, which is not ${alphabet}`);
  }
  if (unique.length !== UNIQUE_LENGTH) {
    throw new NomenclatureError('bad_unique', `${lead}the unique part "${unique}" has ${unique.length} characters, not ${UNIQUE_LENGTH}`);
  }
}

/** The codes against the vocabulary: each known, the histology of the organ, a marker exactly when the stain needs one. */
function checkCodes(codes: Codes, vocabulary: Vocabulary, lead: string): void {
  const fail = (reason: NomenclatureReason, what: string) => new NomenclatureError(reason, lead + what);
  const known = (entries: VocabularyEntry[]) => entries.map((entry) => entry.code).join(', ');
  const inVocabulary = `vocabulary version ${vocabulary.version}`;

  const organ = vocabulary.organs.find((entry) => entry.code === codes.organ);
  if (!organ) throw fail('unknown_organ', `organ "${codes.organ}" is not in ${inVocabulary}, which has ${known(vocabulary.organs)}`);
  if (!organ.histologies.some((entry) => entry.code === codes.histology)) {
    throw fail('histology_not_of_organ', `histology "${codes.histology}" is not one of organ ${organ.code} (${organ.name}), which has ${known(organ.histologies)}`);
  }
  const stain = vocabulary.stains.find((entry) => entry.code === codes.stain);
  if (!stain) throw fail('unknown_stain', `stain "${codes.stain}" is not in ${inVocabulary}, which has ${known(vocabulary.stains)}`);
  if (stain.requiresMarker && codes.marker === null) {
    throw fail('marker_missing', `stain ${stain.code} needs a marker (one of ${known(vocabulary.markers)})`);
  }
  if (!stain.requiresMarker && codes.marker !== null) {
    throw fail('marker_not_allowed', `stain ${stain.code} takes no marker, but marker "${codes.marker}" was given`);
  }
  if (codes.marker !== null && !vocabulary.markers.some((entry) => entry.code === codes.marker)) {
    throw fail('unknown_marker', `marker "${codes.marker}" is not in ${inVocabulary}, which has ${known(vocabulary.markers)}`);
  }
  if (codes.differentiation !== null && !vocabulary.differentiations.some((entry) => entry.code === codes.differentiation)) {
    throw fail(
      'unknown_differentiation',
      `differentiation "${codes.differentiation}" is not in ${inVocabulary}, which has ${known(vocabulary.differentiations)} (or none: "${NO_DIFFERENTIATION}")`,
    );
  }
}
