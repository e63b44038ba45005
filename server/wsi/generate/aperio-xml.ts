/**
 * Aperio ImageScope XML for the tumour regions of a synthetic slide, laid out
 * as PAIP 2019 does: annotation Id 1 "whole tumour" (each tumour's outline),
 * Id 2 "viable tumour" (the same outlines, with each hole as a region of its
 * own marked NegativeROA="1"). Vertices are level-0 pixels; Area is the
 * shoelace area in px² (positive for holes too) and Length the perimeter.
 */
import { ringArea, ringLength, type Point, type TumourRegion } from './tissue.js';

/** ImageScope stores colours as a BGR integer: blue in the high byte. */
export function bgr(red: number, green: number, blue: number): number {
  return (blue << 16) | (green << 8) | red;
}

export const WHOLE_TUMOUR = { id: 1, name: 'whole tumour', lineColor: bgr(0, 255, 0) } as const;
export const VIABLE_TUMOUR = { id: 2, name: 'viable tumour', lineColor: bgr(255, 0, 0) } as const;

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A number as ImageScope writes it: plain decimal, at most 4 decimals, no exponent. */
function num(value: number): string {
  const fixed = value.toFixed(4);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

interface RegionSpec {
  ring: Point[];
  negative: boolean;
}

function region(id: number, spec: RegionSpec, mpp: number): string {
  const area = ringArea(spec.ring);
  const length = ringLength(spec.ring);
  const attributes = [
    `Id="${id}"`,
    'Type="0"',
    'Zoom="0.5"',
    'Selected="0"',
    'ImageLocation=""',
    'ImageFocus="-1"',
    `Length="${num(length)}"`,
    `Area="${num(area)}"`,
    `LengthMicrons="${num(length * mpp)}"`,
    `AreaMicrons="${num(area * mpp * mpp)}"`,
    'Text=""',
    `NegativeROA="${spec.negative ? 1 : 0}"`,
    'InputRegionId="0"',
    'Analyze="1"',
    `DisplayId="${id}"`,
  ];
  const vertices = spec.ring.map(([x, y]) => `<Vertex X="${num(x)}" Y="${num(y)}" Z="0"/>`).join('\n');
  return `<Region ${attributes.join(' ')}>\n<Attributes/>\n<Vertices>\n${vertices}\n</Vertices>\n</Region>`;
}

function annotation(layer: { id: number; name: string; lineColor: number }, regions: RegionSpec[], mpp: number): string {
  const head = [
    `Id="${layer.id}"`,
    `Name="${escape(layer.name)}"`,
    'ReadOnly="0"',
    'NameReadOnly="0"',
    'LineColorReadOnly="0"',
    'Incremental="0"',
    'Type="4"',
    `LineColor="${layer.lineColor}"`,
    'Visible="1"',
    'Selected="0"',
    'MarkupImagePath=""',
    'MacroName=""',
  ].join(' ');
  const body = regions.map((spec, i) => region(i + 1, spec, mpp)).join('\n');
  return [
    `<Annotation ${head}>`,
    '<Attributes>\n<Attribute Name="Description" Id="0" Value=""/>\n</Attributes>',
    '<Regions>',
    '<RegionAttributeHeaders>\n<AttributeHeader Id="9999" Name="Region" ColumnWidth="-1"/>\n<AttributeHeader Id="9997" Name="Length" ColumnWidth="-1"/>\n<AttributeHeader Id="9996" Name="Area" ColumnWidth="-1"/>\n<AttributeHeader Id="9998" Name="Text" ColumnWidth="-1"/>\n</RegionAttributeHeaders>',
    body,
    '</Regions>',
    '<Plots/>',
    '</Annotation>',
  ].join('\n');
}

/** The XML text for `tumours` on a slide of `mpp` microns per pixel. */
export function aperioXml(tumours: readonly TumourRegion[], mpp: number): string {
  const whole = tumours.map((t) => ({ ring: t.outer, negative: false }));
  const viable = tumours.flatMap((t) => [
    { ring: t.outer, negative: false },
    ...t.holes.map((hole) => ({ ring: hole, negative: true })),
  ]);
  return [
    `<Annotations MicronsPerPixel="${mpp.toFixed(4)}">`,
    annotation(WHOLE_TUMOUR, whole, mpp),
    annotation(VIABLE_TUMOUR, viable, mpp),
    '</Annotations>',
    '',
  ].join('\n');
}
