import { z } from 'zod';

/** A heat-map overlay of a slide, as the viewer lists it. */
export const overlaySummary = z
  .object({
    name: z.string(),
    dzi: z.string().meta({ description: 'Path of its Deep Zoom descriptor on this server' }),
    colormap: z.string().optional().meta({ description: "From the heat map's sidecar, when present" }),
    cutoff: z.number().optional(),
    createdAt: z.string().meta({ description: 'When the descriptor was written (ISO 8601)' }),
  })
  .meta({ id: 'OverlaySummary' });
export type OverlaySummary = z.infer<typeof overlaySummary>;

export const overlayList = z.object({ overlays: z.array(overlaySummary) }).meta({ id: 'OverlayList' });
export type OverlayList = z.infer<typeof overlayList>;

const size = z.object({ width: z.number().int(), height: z.number().int() });

/** The IIIF Image API 3.0 image information (info.json), offering only what this server renders within its bounds. */
export const iiifInfo = z
  .object({
    '@context': z.literal('http://iiif.io/api/image/3/context.json'),
    id: z.string().meta({ description: 'The image service’s absolute URL' }),
    type: z.literal('ImageService3'),
    protocol: z.literal('http://iiif.io/api/image'),
    profile: z.literal('level1'),
    width: z.number().int(),
    height: z.number().int(),
    maxArea: z.number().int().meta({ description: 'The most pixels an image answer has' }),
    sizes: z.array(size).meta({ description: 'Whole-image sizes that render within tiles.maxRenderSourcePixels, smallest first' }),
    tiles: z.array(z.object({ width: z.number().int(), scaleFactors: z.array(z.number().int()) })).optional(),
    extraFormats: z.array(z.string()),
    extraFeatures: z.array(z.string()),
  })
  .meta({ id: 'IiifInfo' });
export type IiifInfo = z.infer<typeof iiifInfo>;

/** A tile capability: what the viewer adds to its tile URLs so that they are checked without the database. */
export const tileCapabilityView = z
  .object({
    slide: z.number().int(),
    capability: z.string().meta({ description: 'Add it to the slide’s tile URLs as the query parameter `parameter` names' }),
    parameter: z.literal('cap'),
    expiresAt: z.string().meta({ description: 'When it stops working (ISO 8601); ask for a new one before' }),
    lifetimeSeconds: z.number().int().meta({ description: 'How long a capability lives (tiles.capabilityMinutes)' }),
  })
  .meta({ id: 'TileCapability' });
export type TileCapabilityView = z.infer<typeof tileCapabilityView>;
