import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ExitCode, FatalError } from '../errors.js';
import type { RequirableField, Vocabulary, VocabularyEntry } from '../ingest/types.js';

/**
 * The controlled vocabularies (config/vocabularies.json): loading them with
 * every problem reported at once, and resolving what a curator typed to a code.
 */

/** A metadata field whose values come from the vocabulary. */
export type VocabularyField = 'organ' | 'histology' | 'stain' | 'marker' | 'differentiation' | 'annotationMethod';

/** What a curator's value resolved to: a code, or why it did not resolve (with the allowed values). */
export type Lookup = { code: string } | { code: null; reason: string };

const REQUIRABLE_FIELDS = ['differentiation', 'pathologyInfo', 'annotationMethod', 'marker'] as const;
// Fails to compile when types.ts gains a requirable field that this list lacks.
const _everyRequirableField: [Exclude<RequirableField, (typeof REQUIRABLE_FIELDS)[number]>] extends [never] ? true : false = true;

const CODE_RULE = 'must be 1 to 8 capital letters or digits';
const code = z.string({ error: 'must be a code string' }).regex(/^[A-Z0-9]{1,8}$/, CODE_RULE);
const name = z.string({ error: 'must be a name string' }).trim().min(1, 'must not be empty');
const entry = z.strictObject({ code, name }, { error: 'must be an object with code and name' });

/** A list of entries whose codes and names each identify one entry, so that lookups are never ambiguous. */
function entryList<T extends z.ZodType>(item: T, what: string) {
  return z.array(item, { error: `must be a list of ${what}` });
}

function distinctEntries(list: unknown[], ctx: z.RefinementCtx): void {
  const owner = new Map<string, number>();
  list.forEach((item, index) => {
    if (!isRecord(item)) return;
    const claims = new Set<string>();
    for (const key of ['code', 'name'] as const) {
      const value = item[key];
      if (typeof value !== 'string') continue;
      const folded = strictKey(value);
      if (claims.has(folded)) continue; // an entry may be named by its own code
      claims.add(folded);
      const first = owner.get(folded);
      if (first === undefined) owner.set(folded, index);
      else ctx.addIssue({ code: 'custom', path: [index, key], message: `${JSON.stringify(value)} is already used by entry [${first}]` });
    }
  });
}

const distinct = { when: (payload: { value: unknown }) => Array.isArray(payload.value) };

const organ = z.strictObject(
  {
    code,
    name,
    histologies: entryList(entry, 'histologies').min(1, 'every organ needs at least one histology').superRefine(distinctEntries, distinct),
    requiredFields: z.array(z.enum(REQUIRABLE_FIELDS, { error: `must be one of ${REQUIRABLE_FIELDS.join(', ')}` }), {
      error: 'must be a list of field names (may be empty)',
    }),
  },
  { error: 'must be an organ object' },
);

const stain = z.strictObject(
  { code, name, requiresMarker: z.boolean({ error: 'must be true or false' }) },
  { error: 'must be a stain object' },
);

const vocabularySchema = z
  .strictObject(
    {
      version: z.number({ error: 'must be a number' }).int('must be a whole number').positive('must be positive'),
      organs: entryList(organ, 'organs').min(1, 'must list at least one organ').superRefine(distinctEntries, distinct),
      stains: entryList(stain, 'stains').min(1, 'must list at least one stain').superRefine(distinctEntries, distinct),
      markers: entryList(entry, 'markers').superRefine(distinctEntries, distinct),
      differentiations: entryList(entry, 'differentiations').superRefine(distinctEntries, distinct),
      annotationMethods: entryList(entry, 'annotation methods').superRefine(distinctEntries, distinct),
    },
    { error: 'must be a JSON object' },
  )
  .superRefine(usableRequirements, { when: (payload) => isRecord(payload.value) });

/** A field that an organ requires, or a stain's marker, must have values to choose from. */
function usableRequirements(vocabulary: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const isEmptyList = (key: string) => Array.isArray(vocabulary[key]) && vocabulary[key].length === 0;
  const listOf: Partial<Record<RequirableField, string>> = {
    differentiation: 'differentiations',
    annotationMethod: 'annotationMethods',
    marker: 'markers',
  };
  const organs = Array.isArray(vocabulary.organs) ? vocabulary.organs : [];
  organs.forEach((organ: unknown, i) => {
    if (!isRecord(organ) || !Array.isArray(organ.requiredFields)) return;
    organ.requiredFields.forEach((field: unknown, j) => {
      const list = listOf[field as RequirableField];
      if (list !== undefined && isEmptyList(list)) {
        ctx.addIssue({ code: 'custom', path: ['organs', i, 'requiredFields', j], message: `requires ${String(field)} but ${list} is empty` });
      }
    });
  });
  const stains = Array.isArray(vocabulary.stains) ? vocabulary.stains : [];
  stains.forEach((stain: unknown, i) => {
    if (isRecord(stain) && stain.requiresMarker === true && isEmptyList('markers')) {
      ctx.addIssue({ code: 'custom', path: ['stains', i, 'requiresMarker'], message: 'the stain requires a marker but markers is empty' });
    }
  });
}

/**
 * Read and validate the vocabulary file. Every problem is reported at once in
 * a FatalError (exit code 2) naming the file and the JSON path of each problem.
 */
export function loadVocabulary(file: string): Vocabulary {
  const invalid = (problems: string[]) =>
    new FatalError(ExitCode.config, `vocabulary ${file} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw new FatalError(ExitCode.config, `vocabulary ${file}: ${reason}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw invalid([`not valid JSON (${(error as Error).message})`]);
  }
  const parsed = vocabularySchema.safeParse(json);
  if (!parsed.success) throw invalid(parsed.error.issues.flatMap((issue) => describeIssue(issue, json)));
  return parsed.data;
}

function describeIssue(issue: z.core.$ZodIssue, json: unknown): string[] {
  const at = jsonPath(issue.path);
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${jsonPath([...issue.path, key])}: unknown key`);
  if (issue.code === 'custom') return [`${at}: ${issue.message}`];
  const value = issue.path.reduce<unknown>((node, key) => (isRecord(node) || Array.isArray(node) ? (node as Record<PropertyKey, unknown>)[key] : undefined), json);
  return [`${at}: ${issue.message}, ${value === undefined ? 'it is missing' : `got ${JSON.stringify(value)}`}`];
}

/** `organs[1].histologies[0].code`; the whole document is `(top level)`. */
function jsonPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('');
}

const LABELS: Record<VocabularyField, string> = {
  organ: 'organ',
  histology: 'histology',
  stain: 'stain',
  marker: 'marker',
  differentiation: 'differentiation',
  annotationMethod: 'annotation method',
};

/**
 * Resolve what a curator typed to a code. The code or the name is accepted,
 * case-insensitively and ignoring surrounding spaces; failing that, `&` and
 * `and`, hyphens, underscores and spaces are ignored ("H and E", "Ki67",
 * "moderately-differentiated") as long as that matches exactly one entry.
 * A histology is looked up among the histologies of `organ` (a code).
 */
export function lookup(vocabulary: Vocabulary, field: VocabularyField, typed: string, organ?: string): Lookup {
  const label = LABELS[field];
  const text = typed.trim();
  if (text === '') return { code: null, reason: `${label} is empty` };
  let entries: VocabularyEntry[];
  let allowedFor = '';
  if (field === 'histology') {
    const owner = vocabulary.organs.find((o) => o.code === organ);
    if (owner === undefined) return { code: null, reason: `histology ${quote(text)} cannot be checked without a known organ` };
    entries = owner.histologies;
    allowedFor = ` for organ ${owner.code}`;
  } else {
    entries = entriesOf(vocabulary, field);
  }

  const exact = matching(entries, text, strictKey);
  const loose = exact.length > 0 ? exact : matching(entries, text, looseKey);
  if (loose.length === 1) return { code: loose[0]!.code };
  if (loose.length > 1) {
    return { code: null, reason: `${label} ${quote(text)} is ambiguous: it could be ${loose.map(describeEntry).join(' or ')}` };
  }
  if (field === 'histology') {
    const elsewhere = vocabulary.organs.filter((o) => o.code !== organ && matching(o.histologies, text, looseKey).length > 0);
    if (elsewhere.length > 0) {
      return {
        code: null,
        reason: `histology ${quote(text)} is not a histology of organ ${organ} (it is one of ${elsewhere.map((o) => o.code).join(', ')}); allowed for ${organ}: ${entries.map(describeEntry).join(', ')}`,
      };
    }
  }
  const allowed = entries.length > 0 ? entries.map(describeEntry).join(', ') : 'none (the vocabulary lists no values)';
  return { code: null, reason: `unknown ${label} ${quote(text)}; allowed${allowedFor}: ${allowed}` };
}

/**
 * The name to show for a code, for the catalog. A histology's name is taken
 * from `organ` when given, otherwise from any organ as long as they agree. An
 * unknown code (from an older vocabulary, say) is shown as itself.
 */
export function displayName(vocabulary: Vocabulary, field: VocabularyField, code: string, organ?: string): string {
  if (field !== 'histology') return entriesOf(vocabulary, field).find((e) => e.code === code)?.name ?? code;
  const names = new Set(
    vocabulary.organs
      .filter((o) => organ === undefined || o.code === organ)
      .flatMap((o) => o.histologies.filter((h) => h.code === code).map((h) => h.name)),
  );
  return names.size === 1 ? [...names][0]! : code;
}

function entriesOf(vocabulary: Vocabulary, field: Exclude<VocabularyField, 'histology'>): VocabularyEntry[] {
  switch (field) {
    case 'organ':
      return vocabulary.organs;
    case 'stain':
      return vocabulary.stains;
    case 'marker':
      return vocabulary.markers;
    case 'differentiation':
      return vocabulary.differentiations;
    case 'annotationMethod':
      return vocabulary.annotationMethods;
  }
}

function matching(entries: VocabularyEntry[], text: string, key: (s: string) => string): VocabularyEntry[] {
  const wanted = key(text);
  return entries.filter((e) => key(e.code) === wanted || key(e.name) === wanted);
}

/** Case and surrounding or repeated spaces do not matter. */
function strictKey(text: string): string {
  return text.trim().toLowerCase().replace(/\s+/g, ' ');
}

/** Nor do `&`, the word `and`, dashes, underscores and spaces. */
function looseKey(text: string): string {
  return strictKey(text)
    .replace(/&|\band\b/g, ' ')
    .replace(/[\p{Pd}_\s]+/gu, '');
}

function describeEntry(entry: VocabularyEntry): string {
  return entry.name === entry.code ? entry.code : `${entry.code} (${entry.name})`;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
