/**
 * Small ImageScope XML documents written by hand for the annotation tests,
 * and an independent shoelace so that the tests do not trust the code they test.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../../server/package-info.js';
import { FIXTURES, fixture, type FixtureName } from '../../support/fixtures.js';

export type Point = [number, number];

export interface RegionSpec {
  id: number;
  type?: number;
  negative?: boolean;
  text?: string;
  /** Extra attributes written as given (already escaped). */
  attributes?: string;
  vertices: Point[];
}

export function region(spec: RegionSpec): string {
  const vertices = spec.vertices.map(([x, y]) => `<Vertex X="${x}" Y="${y}" Z="0"/>`).join('');
  return (
    `<Region Id="${spec.id}" Type="${spec.type ?? 0}" Zoom="1" Text="${spec.text ?? ''}" ` +
    `NegativeROA="${spec.negative ? 1 : 0}"${spec.attributes ? ` ${spec.attributes}` : ''}>` +
    `<Attributes/><Vertices>${vertices}</Vertices></Region>`
  );
}

export function layer(id: number, regions: string[], head = `Name="layer ${id}" LineColor="65280" Visible="1" Type="4" MarkupImagePath=""`): string {
  return `<Annotation Id="${id}" ${head}><Attributes/><Regions>${regions.join('')}</Regions><Plots/></Annotation>`;
}

export function annotations(layers: string[], mpp = '0.5'): string {
  return `<Annotations MicronsPerPixel="${mpp}">${layers.join('')}</Annotations>`;
}

/** An axis-aligned square ring, counter-clockwise on screen (y down) unless `reverse`. */
export function square(x: number, y: number, size: number, reverse = false): Point[] {
  const ring: Point[] = [
    [x, y],
    [x, y + size],
    [x + size, y + size],
    [x + size, y],
  ];
  return reverse ? ring.reverse() : ring;
}

/** Signed shoelace area, positive for counter-clockwise with y up (the RFC 7946 exterior orientation). */
export function shoelace(ring: readonly Point[]): number {
  let sum = 0;
  for (let i = 0; i + 1 < ring.length; i++) sum += ring[i]![0] * ring[i + 1]![1] - ring[i + 1]![0] * ring[i]![1];
  const first = ring[0]!;
  const last = ring[ring.length - 1]!;
  if (first[0] !== last[0] || first[1] !== last[1]) sum += last[0] * first[1] - first[0] * last[1];
  return sum / 2;
}

/** A fixture's text, after checking it is the pinned file (its SHA-256). */
export async function fixtureText(name: FixtureName): Promise<string> {
  const bytes = await readFile(fixture(name));
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== FIXTURES[name]) throw new Error(`${name} is not the pinned fixture (sha256 ${digest})`);
  return bytes.toString('utf8');
}

/** The shipped default of ingest.scrubTextPatterns, read from config/default.json. */
export function defaultScrubPatterns(): string[] {
  const config = JSON.parse(readFileSync(path.join(packageRoot, 'config', 'default.json'), 'utf8')) as { ingest: { scrubTextPatterns: string[] } };
  return config.ingest.scrubTextPatterns;
}
