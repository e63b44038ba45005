/**
 * XML text ⇄ a plain element tree, with the safety rules for files that
 * arrive from outside: DOCTYPE and ENTITY declarations are refused, and only
 * XML's own entities (&lt; &gt; &amp; &quot; &apos;) and character references
 * are expanded — by this module, not by the parser, so nothing else can be.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { AnnotationError, type XmlElement } from './model.js';

/** Characters XML 1.0 does not allow anywhere, not even as a character reference. */
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

const BUILT_IN: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  allowBooleanAttributes: false,
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: '#cdata',
});

function notXml(reason: string): AnnotationError {
  return new AnnotationError('not_xml', `not XML: ${reason}`);
}

function position(text: string, index: number): string {
  const before = text.slice(0, index);
  const line = before.split('\n').length;
  return `line ${line}, column ${index - before.lastIndexOf('\n')}`;
}

function allowedCodePoint(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Expand the built-in entities and character references of `raw`; anything else is an error naming `where`. */
function decode(raw: string, where: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&(?:(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z_:][\w.:-]*);)?/g, (_match, name: string | undefined) => {
    if (name === undefined) throw notXml(`a "&" that does not start an entity reference in ${where}`);
    if (name.startsWith('#')) {
      const cp = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (!allowedCodePoint(cp)) throw notXml(`character reference &${name}; is not allowed in XML (${where})`);
      return String.fromCodePoint(cp);
    }
    const value = BUILT_IN[name];
    if (value === undefined) throw notXml(`undefined entity &${name}; in ${where}`);
    return value;
  });
}

/** An attribute value as an XML processor reports it: line ends and tabs become spaces, then references expand. */
function attributeValue(raw: string, where: string): string {
  if (raw.includes('<')) throw notXml(`"<" in ${where}`);
  return decode(raw.replace(/\r\n?/g, '\n').replace(/[\t\n]/g, ' '), where);
}

type OrderedNode = Record<string, unknown>;

function toElement(name: string, node: OrderedNode): XmlElement {
  const attributes: Record<string, string> = {};
  const rawAttributes = (node[':@'] ?? {}) as Record<string, string>;
  for (const [key, raw] of Object.entries(rawAttributes)) attributes[key] = attributeValue(raw, `attribute ${key} of <${name}>`);
  const children: XmlElement[] = [];
  let text = '';
  for (const child of (node[name] ?? []) as OrderedNode[]) {
    const childName = Object.keys(child).find((key) => key !== ':@');
    if (childName === undefined) continue;
    if (childName === '#text') text += decode(String(child[childName]).replace(/\r\n?/g, '\n'), `the text of <${name}>`);
    else if (childName === '#cdata') {
      for (const piece of child[childName] as OrderedNode[]) text += String(piece['#text'] ?? '');
    } else children.push(toElement(childName, child));
  }
  // Around child elements, text is indentation or mixed content: kept trimmed.
  const kept = children.length > 0 ? text.trim() : text.trim() === '' ? '' : text;
  return { name, attributes, text: kept, children };
}

/** Whether non-blank text follows the root element (the parser would drop it silently), skipping trailing comments and PIs. */
function textAfterRoot(text: string): boolean {
  let end = text.length;
  for (;;) {
    const close = text.lastIndexOf('>', end - 1);
    if (close < 0 || text.slice(close + 1, end).trim() !== '') return close >= 0;
    if (text.startsWith('-->', close - 2)) end = text.lastIndexOf('<!--', close);
    else if (text[close - 1] === '?') end = text.lastIndexOf('<?', close);
    else return false;
    if (end < 0) return false;
  }
}

/**
 * The root element of `text`. Throws AnnotationError 'doctype' for DOCTYPE or
 * ENTITY declarations and 'not_xml' (with line and column where known) for
 * anything that is not one well-formed XML element.
 */
export function parseXmlTree(input: string): XmlElement {
  const text = input.startsWith('\uFEFF') ? input.slice(1) : input;
  const declaration = /<!(DOCTYPE|ENTITY)/i.exec(text);
  if (declaration) {
    throw new AnnotationError('doctype', `${declaration[1]!.toUpperCase()} declarations are not accepted (${position(text, declaration.index)})`);
  }
  const forbidden = FORBIDDEN_CHARACTER.exec(text);
  if (forbidden) {
    const code = forbidden[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw notXml(`character U+${code} is not allowed (${position(text, forbidden.index)})`);
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    throw notXml(`${msg.replace(/\.$/, '')} (line ${line}${col === undefined ? '' : `, column ${col}`})`);
  }
  if (textAfterRoot(text)) throw notXml('text after the root element');
  let nodes: OrderedNode[];
  try {
    nodes = parser.parse(text) as OrderedNode[];
  } catch (error) {
    throw notXml((error as Error).message);
  }
  const roots: XmlElement[] = [];
  for (const node of nodes) {
    const name = Object.keys(node).find((key) => key !== ':@');
    if (name === undefined) continue;
    if (name === '#cdata' || (name === '#text' && String(node[name]).trim() !== '')) throw notXml('text outside the root element');
    if (name === '#text') continue;
    roots.push(toElement(name, node));
  }
  if (roots.length === 0) throw notXml('no root element');
  if (roots.length > 1) throw notXml(`more than one root element (<${roots[0]!.name}>, <${roots[1]!.name}>)`);
  return roots[0]!;
}

// ---------------------------------------------------------------------------
// Writing

/**
 * Text as XML character data. Characters that XML cannot carry at all become
 * U+FFFD; tabs and line ends in attributes are written as references so that
 * they survive attribute-value normalisation.
 */
export function escapeText(value: string): string {
  return value.replace(FORBIDDEN_CHARACTERS, '\uFFFD').replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

export function escapeAttribute(value: string): string {
  return escapeText(value).replace(/["\t\n\r]/g, (c) => (c === '"' ? '&quot;' : `&#${c.charCodeAt(0)};`));
}

export function writeAttributes(attributes: Iterable<readonly [string, string]>): string {
  let out = '';
  for (const [name, value] of attributes) out += ` ${name}="${escapeAttribute(value)}"`;
  return out;
}

/** An element kept as-is, indented by `indent` tabs. */
export function writeElement(element: XmlElement, indent: number): string {
  const pad = '\t'.repeat(indent);
  const head = `${pad}<${element.name}${writeAttributes(Object.entries(element.attributes))}`;
  if (element.children.length === 0) {
    return element.text === '' ? `${head}/>` : `${head}>${escapeText(element.text)}</${element.name}>`;
  }
  const inner = element.children.map((child) => writeElement(child, indent + 1)).join('\n');
  return `${head}>${escapeText(element.text)}\n${inner}\n${pad}</${element.name}>`;
}
