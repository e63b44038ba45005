/**
 * The in-memory form of an Aperio ImageScope annotation file.
 *
 * The named fields are what the rest of Slidebank reads; `extra` keeps every
 * other attribute exactly as written (ReadOnly, Zoom, Length, Area, …) and
 * `children` every element this module does not interpret (InputAnnotationId,
 * MacroId, …), so that serialising a parsed file writes an equivalent one.
 * Coordinates are level-0 pixels, x to the right and y down.
 */

/** A vertex as [x, y] in level-0 pixels. */
export type Vertex = [x: number, y: number];

/** ImageScope region types. */
export const RegionType = { polygon: 0, rectangle: 1, ellipse: 2, arrow: 3, ruler: 4 } as const;
export type RegionType = (typeof RegionType)[keyof typeof RegionType];
export type RegionKind = keyof typeof RegionType;

const KIND_BY_TYPE: readonly RegionKind[] = ['polygon', 'rectangle', 'ellipse', 'arrow', 'ruler'];

export function regionKind(type: RegionType): RegionKind {
  return KIND_BY_TYPE[type]!;
}

/** Polygons, rectangles and ellipses enclose an area; arrows and rulers are lines. */
export function isShape(type: RegionType): boolean {
  return type === RegionType.polygon || type === RegionType.rectangle || type === RegionType.ellipse;
}

/** An element this module keeps without interpreting it. */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  /** The element's character data (its text pieces joined), or '' when it has none. */
  text: string;
  children: XmlElement[];
}

/** An `<Attribute Name= Value=>` entry of a layer or a region. */
export interface AperioAttribute {
  name: string;
  value: string;
  /** The other attributes of the element (Id, DisplayColor, …) as written. */
  extra: Record<string, string>;
}

export interface AperioRegion {
  id: number;
  type: RegionType;
  /** NegativeROA="1": a hole cut out of the shapes of the same layer. */
  negative: boolean;
  text: string;
  vertices: Vertex[];
  /** Z of each vertex; present only when some vertex has Z other than 0. */
  z?: number[];
  attributes: AperioAttribute[];
  /** Zoom, Selected, ImageLocation, Length, Area, LengthMicrons, AreaMicrons, … as written. */
  extra: Record<string, string>;
  /** Child elements other than Attributes and Vertices. */
  children: XmlElement[];
}

export interface AperioLayer {
  id: number;
  name: string;
  /** ImageScope's colour: a BGR integer (blue in the high byte). Serialising writes this one. */
  lineColor: number;
  /** `lineColor` as #rrggbb, for people and the viewer. */
  colour: string;
  visible: boolean;
  /** The annotation's Type attribute (4 for hand-drawn layers, 3 for algorithm output). */
  type: number;
  attributes: AperioAttribute[];
  regions: AperioRegion[];
  /** The attributes of each `<AttributeHeader>` under `<RegionAttributeHeaders>`. */
  headers: Record<string, string>[];
  /** The children of `<Plots>`. */
  plots: XmlElement[];
  /** ReadOnly, NameReadOnly, Incremental, Selected, MarkupImagePath, MacroName, … as written. */
  extra: Record<string, string>;
  /** Child elements other than Attributes, Regions and Plots (InputAnnotationId, MacroId, …). */
  children: XmlElement[];
}

export interface AperioAnnotations {
  /** Null when the file does not say (missing, empty or 0). */
  micronsPerPixel: number | null;
  layers: AperioLayer[];
  /** Attributes of `<Annotations>` other than MicronsPerPixel. */
  extra: Record<string, string>;
  /** Child elements of `<Annotations>` other than Annotation (none in ImageScope's own files). */
  children: XmlElement[];
}

export type AnnotationErrorCode =
  | 'not_xml' // not well-formed XML
  | 'doctype' // a DOCTYPE or ENTITY declaration (refused: no entity expansion)
  | 'not_annotations' // well-formed, but not an <Annotations> document
  | 'invalid_value' // an attribute with a value it cannot have (Id, Type, LineColor, MicronsPerPixel)
  | 'invalid_vertex' // a vertex without X or Y, or with a coordinate that is not a finite number
  | 'invalid_shape'; // too few vertices for the region's type

/**
 * Why an annotation file was refused. `reason` says what and where in one
 * sentence (it is what an ingest record shows); `code` is stable for callers.
 */
export class AnnotationError extends Error {
  readonly code: AnnotationErrorCode;
  readonly reason: string;

  constructor(code: AnnotationErrorCode, reason: string) {
    super(`invalid Aperio XML: ${reason}`);
    this.name = 'AnnotationError';
    this.code = code;
    this.reason = reason;
  }
}

/** ImageScope's BGR integer as #rrggbb. */
export function bgrToHex(lineColor: number): string {
  const red = lineColor & 0xff;
  const green = (lineColor >> 8) & 0xff;
  const blue = (lineColor >> 16) & 0xff;
  return `#${[red, green, blue].map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

/** #rrggbb as ImageScope's BGR integer. */
export function hexToBgr(colour: string): number {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
  if (!match) throw new RangeError(`not a #rrggbb colour: ${colour}`);
  return (parseInt(match[3]!, 16) << 16) | (parseInt(match[2]!, 16) << 8) | parseInt(match[1]!, 16);
}

/** "region 5 (Id 12) of annotation 2 (Id 39256)": positions count from 1, as a person does. */
export function layerWhere(layerIndex: number, layerId: number | string): string {
  return `annotation ${layerIndex + 1} (Id ${layerId})`;
}

export function regionWhere(layerIndex: number, layerId: number | string, regionIndex: number, regionId: number | string): string {
  return `region ${regionIndex + 1} (Id ${regionId}) of ${layerWhere(layerIndex, layerId)}`;
}
