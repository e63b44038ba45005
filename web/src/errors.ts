/**
 * What the server says went wrong, as sentences for people. A malformed body
 * or query (400 `invalid_request`, `invalid_query`) names every problem in
 * `details.problems` as `{field, message}`, the message led by the field's
 * path (`parameters.tileSize must be at least 1`); here the path gives way to
 * the label the form shows for that field ("Tile size must be at least 1.").
 * The request id never goes into the text: ErrorBox shows it apart, for
 * support. Pure functions without imports, so the unit tests can load them.
 */

export interface Problem {
  field: string;
  message: string;
}

/** A field path → the label a form shows for it; `*` stands for any list index (`publications.*.doi`). */
export type FieldLabels = Readonly<Record<string, string>>;

/** The parts of a server error that its sentences are made from (ApiError has them). */
export interface ServerError {
  status: number;
  code: string;
  message: string;
  requestId: string | null;
  details?: unknown;
}

/** Labels of fields whose name alone reads poorly, on whichever form they appear. */
export const COMMON_LABELS: FieldLabels = {
  email: 'E-mail',
  usedFor: 'What you used the data for',
  slideId: 'Slide',
};

const ACRONYMS = new Set(['doi', 'id', 'url', 'pdf', 'png', 'csv', 'xml', 'dzi', 'mpp', 'orcid', 'json']);
/** Words a message starts with when it says something about a field named before it. */
const PREDICATE = /^(must|is|are|has|have|needs?|lists|should|cannot|can|may|was|were|does|do|gives)\b/;
const CONTAINERS = new Set(['body', 'query']);

/** The `details.problems` of an error answer; empty when there are none or they are not in that shape. */
export function problemsOf(details: unknown): Problem[] {
  const problems = (details as { problems?: unknown } | null | undefined)?.problems;
  if (!Array.isArray(problems)) return [];
  return problems.filter(
    (p): p is Problem => typeof p === 'object' && p !== null && typeof (p as Problem).field === 'string' && typeof (p as Problem).message === 'string',
  );
}

/** `tileSize` → "Tile size", `doi` → "DOI", `principal_investigator` → "Principal investigator". */
export function humanize(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_-]+/)
    .filter(Boolean)
    .map((word) => (ACRONYMS.has(word.toLowerCase()) ? word.toUpperCase() : word.toLowerCase()));
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function singular(word: string): string {
  if (/ies$/.test(word)) return `${word.slice(0, -3)}y`;
  if (/[^su]s$/.test(word)) return word.slice(0, -1);
  return word;
}

const isIndex = (segment: string) => /^\d+$/.test(segment);

/**
 * The label for a field path: the form's own (exactly, or with `*` for list
 * indexes), else one made from the path's last name. A field inside a list
 * says which item: `publications.0.doi` → "DOI of publication 1".
 */
export function fieldLabel(field: string, labels: FieldLabels = {}): string {
  const all = { ...COMMON_LABELS, ...labels };
  const exact = all[field];
  if (exact !== undefined) return exact;
  const segments = field.split('.').filter(Boolean);
  const general = segments.map((s) => (isIndex(s) ? '*' : s)).join('.');
  const last = segments.at(-1) ?? field;
  let base: string;
  let outer = segments;
  if (isIndex(last) && segments.length > 1) {
    // `publications.0`: the item itself, "Publication 1".
    base = `${all[general] ?? humanize(singular(segments.at(-2)!))} ${Number(last) + 1}`;
    outer = segments.slice(0, -2);
  } else base = all[general] ?? all[last] ?? humanize(last);
  // Innermost list first: "X of prediction 2".
  const within: string[] = [];
  for (let i = outer.length - 1; i > 0; i--) {
    if (isIndex(outer[i]!) && !isIndex(outer[i - 1]!)) {
      within.push(`${humanize(singular(outer[i - 1]!)).toLowerCase()} ${Number(outer[i]) + 1}`);
    }
  }
  return within.length ? `${base} of ${within.join(' of ')}` : base;
}

/** The message without the field it leads with (`parameters.size`, `size`, or `e-mail` for `email`). */
function withoutSubject(message: string, field: string): string {
  const last = field.split('.').filter((s) => !isIndex(s)).at(-1) ?? field;
  const lower = message.toLowerCase();
  for (const subject of [field, last]) {
    if (subject && lower.startsWith(`${subject.toLowerCase()} `)) return message.slice(subject.length + 1);
  }
  const first = /^(\S+) /.exec(message);
  if (first && first[1]!.replace(/[^A-Za-z0-9]/g, '').toLowerCase() === last.toLowerCase()) return message.slice(first[0].length);
  return message;
}

function asSentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return '';
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/** One problem as a sentence that names the field by its label. */
export function problemSentence(problem: Problem, labels: FieldLabels = {}): string {
  const { field, message } = problem;
  // The body or the query as a whole: nothing to name.
  if (field === '' || CONTAINERS.has(field)) return asSentence(message);
  const label = fieldLabel(field, labels);
  const rest = withoutSubject(message, field);
  if (rest === message && !PREDICATE.test(message)) {
    // A message that does not lead with its field (a rule between two fields, a library's own wording).
    return asSentence(`${label}: ${message}`);
  }
  if (rest === 'is missing') return asSentence(`${label} is required`);
  if (/^is not a (field|parameter) here$/.test(rest)) return asSentence(`${label} is not something this form can send`);
  return asSentence(PREDICATE.test(rest) ? `${label} ${rest}` : `${label}: ${rest}`);
}

/** The text to show for an error answer: its problems as sentences, or its message without the request id. */
export function errorSentence(error: ServerError, labels: FieldLabels = {}): string {
  const problems = problemsOf(error.details);
  if ((error.code === 'invalid_request' || error.code === 'invalid_query') && problems.length > 0) {
    return [...new Set(problems.map((p) => problemSentence(p, labels)))].join(' ');
  }
  if (error.code === 'internal_error' || error.status >= 500) {
    if (error.code === 'internal_error' || (error.requestId !== null && error.message.includes(error.requestId))) {
      return 'Something went wrong on the server. Try again in a moment; if it keeps happening, tell the operator and quote the details below.';
    }
  }
  let message = error.message;
  if (error.requestId) {
    // A clause that quotes the request id goes: the id is shown apart.
    message = message
      .split(/;\s*/)
      .filter((part) => !part.includes(error.requestId!))
      .join('; ');
  }
  return asSentence(message);
}
