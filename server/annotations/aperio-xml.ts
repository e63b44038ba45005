/**
 * Aperio ImageScope XML ⇄ AperioAnnotations.
 *
 * Parsing is strict about what the rest of Slidebank relies on (every vertex
 * has finite X and Y, every shape has enough vertices, Ids and types are
 * numbers) and keeps everything else as written, so that
 * parseAperioXml(serializeAperioXml(doc)) gives `doc` back for any parsed file.
 */
import { regionArea, regionLength } from './geometry.js';
import {
  AnnotationError,
  RegionType,
  bgrToHex,
  isShape,
  layerWhere,
  regionWhere,
  type AperioAnnotations,
  type AperioAttribute,
  type AperioLayer,
  type AperioRegion,
  type Vertex,
  type XmlElement,
} from './model.js';
import { parseXmlTree, writeAttributes, writeElement } from './xml-tree.js';

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A decimal number as written in the file, or undefined when `raw` is not one. Infinity stays Infinity. */
function decimal(raw: string): number | undefined {
  const text = raw.trim();
  return NUMBER.test(text) ? Number(text) : undefined;
}

function without(attributes: Record<string, string>, names: readonly string[]): Record<string, string> {
  const rest: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) if (!names.includes(key)) rest[key] = value;
  return rest;
}

function invalid(where: string, what: string): AnnotationError {
  return new AnnotationError('invalid_value', `${where} has ${what}`);
}

/** A numeric Id, or `fallback` (the 1-based position) when the attribute is absent. */
function idOf(element: XmlElement, fallback: number, where: string): number {
  const raw = element.attributes.Id;
  if (raw === undefined) return fallback;
  const id = decimal(raw);
  if (id === undefined || !Number.isFinite(id)) throw invalid(where, `an Id that is not a number: "${raw}"`);
  return id;
}

function parseAttributes(container: XmlElement | undefined): AperioAttribute[] {
  if (!container) return [];
  return container.children
    .filter((child) => child.name === 'Attribute')
    .map((child) => ({
      name: child.attributes.Name ?? '',
      value: child.attributes.Value ?? '',
      extra: without(child.attributes, ['Name', 'Value']),
    }));
}

const REGION_NAMES: Record<RegionType, string> = { 0: 'a polygon', 1: 'a rectangle', 2: 'an ellipse', 3: 'an arrow', 4: 'a ruler' };
const MINIMUM_VERTICES: Record<RegionType, number> = { 0: 3, 1: 4, 2: 2, 3: 2, 4: 2 };

function coordinate(vertex: XmlElement, axis: 'X' | 'Y', index: number, where: string): number {
  const raw = vertex.attributes[axis];
  if (raw === undefined || raw.trim() === '') {
    throw new AnnotationError('invalid_vertex', `${where} has a vertex without ${axis} (vertex ${index + 1})`);
  }
  const value = decimal(raw);
  if (value === undefined || !Number.isFinite(value)) {
    throw new AnnotationError('invalid_vertex', `${where} has a vertex whose ${axis} is not a finite number: "${raw}" (vertex ${index + 1})`);
  }
  return value;
}

function parseRegion(element: XmlElement, layerIndex: number, layerId: number, regionIndex: number): AperioRegion {
  const provisional = regionWhere(layerIndex, layerId, regionIndex, element.attributes.Id ?? '?');
  const id = idOf(element, regionIndex + 1, provisional);
  const where = regionWhere(layerIndex, layerId, regionIndex, id);
  const rawType = element.attributes.Type ?? '0';
  const type = decimal(rawType);
  if (type === undefined || !Number.isInteger(type) || type < 0 || type > 4) {
    throw invalid(where, `an unknown Type "${rawType}" (0 polygon, 1 rectangle, 2 ellipse, 3 arrow, 4 ruler)`);
  }
  const regionType = type as RegionType;
  const vertexElements = element.children.filter((c) => c.name === 'Vertices').flatMap((c) => c.children.filter((v) => v.name === 'Vertex'));
  const vertices: Vertex[] = [];
  const z: number[] = [];
  vertexElements.forEach((vertex, i) => {
    vertices.push([coordinate(vertex, 'X', i, where), coordinate(vertex, 'Y', i, where)]);
    const rawZ = vertex.attributes.Z;
    const zValue = rawZ === undefined ? 0 : decimal(rawZ);
    z.push(zValue !== undefined && Number.isFinite(zValue) ? zValue : 0);
  });
  // A freehand outline often repeats its first vertex at the end; that one does not count.
  const last = vertices[vertices.length - 1];
  const repeated = regionType === RegionType.polygon && vertices.length > 1 && last![0] === vertices[0]![0] && last![1] === vertices[0]![1];
  const distinct = vertices.length - (repeated ? 1 : 0);
  const minimum = MINIMUM_VERTICES[regionType];
  if (distinct < minimum) {
    throw new AnnotationError('invalid_shape', `${where}: ${REGION_NAMES[regionType]} needs at least ${minimum} vertices, this one has ${distinct}`);
  }
  const region: AperioRegion = {
    id,
    type: regionType,
    negative: element.attributes.NegativeROA?.trim() === '1',
    text: element.attributes.Text ?? '',
    vertices,
    attributes: parseAttributes(element.children.find((c) => c.name === 'Attributes')),
    extra: without(element.attributes, ['Id', 'Type', 'NegativeROA', 'Text']),
    children: element.children.filter((c) => c.name !== 'Attributes' && c.name !== 'Vertices'),
  };
  if (z.some((value) => value !== 0)) region.z = z;
  return region;
}

function parseLayer(element: XmlElement, layerIndex: number): AperioLayer {
  const provisional = layerWhere(layerIndex, element.attributes.Id ?? '?');
  const id = idOf(element, layerIndex + 1, provisional);
  const where = layerWhere(layerIndex, id);
  const rawColour = element.attributes.LineColor;
  let lineColor = 65280; // ImageScope's default green, for files that leave it out
  if (rawColour !== undefined) {
    const value = decimal(rawColour);
    if (value === undefined || !Number.isInteger(value)) throw invalid(where, `a LineColor that is not an integer: "${rawColour}"`);
    lineColor = value & 0xffffff; // a COLORREF: the high byte is not part of the colour
  }
  const rawType = element.attributes.Type ?? '4';
  const type = decimal(rawType);
  if (type === undefined || !Number.isFinite(type)) throw invalid(where, `a Type that is not a number: "${rawType}"`);
  const regionsElements = element.children.filter((c) => c.name === 'Regions');
  const regions = regionsElements
    .flatMap((c) => c.children.filter((r) => r.name === 'Region'))
    .map((region, regionIndex) => parseRegion(region, layerIndex, id, regionIndex));
  const headers = regionsElements
    .flatMap((c) => c.children.filter((h) => h.name === 'RegionAttributeHeaders'))
    .flatMap((c) => c.children.filter((h) => h.name === 'AttributeHeader'))
    .map((h) => ({ ...h.attributes }));
  return {
    id,
    name: element.attributes.Name ?? '',
    lineColor,
    colour: bgrToHex(lineColor),
    visible: element.attributes.Visible?.trim() !== '0',
    type,
    attributes: parseAttributes(element.children.find((c) => c.name === 'Attributes')),
    regions,
    headers,
    plots: element.children.filter((c) => c.name === 'Plots').flatMap((c) => c.children),
    extra: without(element.attributes, ['Id', 'Name', 'LineColor', 'Visible', 'Type']),
    children: element.children.filter((c) => !['Attributes', 'Regions', 'Plots'].includes(c.name)),
  };
}

/**
 * Parse an ImageScope annotation file. Throws AnnotationError, whose `reason`
 * says what is wrong and where, for anything that is not well-formed XML with
 * an <Annotations> root, for DOCTYPE/ENTITY declarations, and for regions
 * whose vertices or type make no sense.
 */
export function parseAperioXml(text: string): AperioAnnotations {
  const root = parseXmlTree(text);
  if (root.name !== 'Annotations') {
    throw new AnnotationError('not_annotations', `no <Annotations> root (the root element is <${root.name}>)`);
  }
  const rawMpp = root.attributes.MicronsPerPixel;
  let micronsPerPixel: number | null = null;
  if (rawMpp !== undefined && rawMpp.trim() !== '') {
    const value = decimal(rawMpp);
    if (value === undefined || !Number.isFinite(value) || value < 0) {
      throw invalid('<Annotations>', `a MicronsPerPixel that is not a number ≥ 0: "${rawMpp}"`);
    }
    micronsPerPixel = value === 0 ? null : value;
  }
  return {
    micronsPerPixel,
    layers: root.children.filter((c) => c.name === 'Annotation').map(parseLayer),
    extra: without(root.attributes, ['MicronsPerPixel']),
    children: root.children.filter((c) => c.name !== 'Annotation'),
  };
}

// ---------------------------------------------------------------------------
// Writing

/** A number as text that parses back to the same number (JavaScript's shortest round-trip form). */
function num(value: number): string {
  return String(value);
}

/**
 * Attributes in ImageScope's order: each of `canonical` takes its known value,
 * else the one kept in `extra`, else its default (undefined: left out); the
 * rest of `extra` follows in its own order.
 */
function ordered(canonical: [string, string | undefined, string?][], extra: Record<string, string>): [string, string][] {
  const out: [string, string][] = [];
  const seen = new Set<string>();
  for (const [name, known, fallback] of canonical) {
    seen.add(name);
    const value = known ?? extra[name] ?? fallback;
    if (value !== undefined) out.push([name, value]);
  }
  for (const [name, value] of Object.entries(extra)) if (!seen.has(name)) out.push([name, value]);
  return out;
}

function writeAttributeList(attributes: readonly AperioAttribute[], indent: number): string {
  const pad = '\t'.repeat(indent);
  if (attributes.length === 0) return `${pad}<Attributes/>`;
  const items = attributes.map(
    (a) => `${pad}\t<Attribute${writeAttributes(ordered([['Name', a.name], ['Id', undefined, '0'], ['Value', a.value]], a.extra))}/>`,
  );
  return [`${pad}<Attributes>`, ...items, `${pad}</Attributes>`].join('\n');
}

function writeRegion(region: AperioRegion, mpp: number | null): string {
  // Attributes ImageScope writes but a hand-made document may lack: filled in from the geometry.
  const length = regionLength(region);
  const area = regionArea(region);
  const head = ordered(
    [
      ['Id', num(region.id)],
      ['Type', String(region.type)],
      ['Zoom', undefined, '1'],
      ['Selected', undefined, '0'],
      ['ImageLocation', undefined, ''],
      ['ImageFocus', undefined, '-1'],
      ['Length', undefined, length.toFixed(1)],
      ['Area', undefined, area.toFixed(1)],
      ['LengthMicrons', undefined, (length * (mpp ?? 0)).toFixed(1)],
      ['AreaMicrons', undefined, (area * (mpp ?? 0) ** 2).toFixed(1)],
      ['Text', region.text],
      ['NegativeROA', region.negative ? '1' : '0'],
      ['InputRegionId', undefined, '0'],
      ['Analyze', undefined, isShape(region.type) ? '1' : '0'],
      ['DisplayId', undefined, num(region.id)],
    ],
    region.extra,
  );
  const vertices = region.vertices.map(([x, y], i) => `\t\t\t\t\t<Vertex X="${num(x)}" Y="${num(y)}" Z="${num(region.z?.[i] ?? 0)}"/>`);
  return [
    `\t\t\t<Region${writeAttributes(head)}>`,
    writeAttributeList(region.attributes, 4),
    '\t\t\t\t<Vertices>',
    ...vertices,
    '\t\t\t\t</Vertices>',
    ...region.children.map((c) => writeElement(c, 4)),
    '\t\t\t</Region>',
  ].join('\n');
}

function writeLayer(layer: AperioLayer, mpp: number | null): string {
  const head = ordered(
    [
      ['Id', num(layer.id)],
      ['Name', layer.name],
      ['ReadOnly', undefined, '0'],
      ['NameReadOnly', undefined, '0'],
      ['LineColorReadOnly', undefined, '0'],
      ['Incremental', undefined, '0'],
      ['Type', num(layer.type)],
      ['LineColor', String(layer.lineColor)],
      ['Visible', layer.visible ? '1' : '0'],
      ['Selected', undefined, '0'],
      ['MarkupImagePath', undefined, ''],
      ['MacroName', undefined, ''],
    ],
    layer.extra,
  );
  const headers =
    layer.headers.length === 0
      ? ['\t\t\t<RegionAttributeHeaders/>']
      : ['\t\t\t<RegionAttributeHeaders>', ...layer.headers.map((h) => `\t\t\t\t<AttributeHeader${writeAttributes(Object.entries(h))}/>`), '\t\t\t</RegionAttributeHeaders>'];
  const plots = layer.plots.length === 0 ? ['\t\t<Plots/>'] : ['\t\t<Plots>', ...layer.plots.map((p) => writeElement(p, 3)), '\t\t</Plots>'];
  return [
    `\t<Annotation${writeAttributes(head)}>`,
    ...layer.children.map((c) => writeElement(c, 2)),
    writeAttributeList(layer.attributes, 2),
    '\t\t<Regions>',
    ...headers,
    ...layer.regions.map((r) => writeRegion(r, mpp)),
    '\t\t</Regions>',
    ...plots,
    '\t</Annotation>',
  ].join('\n');
}

/**
 * ImageScope XML for `doc`: UTF-8 text without an XML declaration (as
 * ImageScope writes it), tab-indented, LF line ends. An unknown
 * micronsPerPixel is written as 0, ImageScope's own "unknown".
 */
export function serializeAperioXml(doc: AperioAnnotations): string {
  const mpp = doc.micronsPerPixel;
  const head = ordered([['MicronsPerPixel', mpp === null ? '0' : num(mpp)]], doc.extra);
  const body = [...doc.children.map((c) => writeElement(c, 1)), ...doc.layers.map((layer) => writeLayer(layer, mpp))];
  return [`<Annotations${writeAttributes(head)}>`, ...body, '</Annotations>', ''].join('\n');
}
