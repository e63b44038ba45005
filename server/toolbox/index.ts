/**
 * The preprocessing toolbox (docs/toolbox.md) as a pure library on top of
 * server/wsi and server/annotations: no HTTP, no database. The CLI
 * (`slidebank toolbox`) and the queue's workers (server/queue) call it.
 *
 * Tissue masks, XML → masks, patch generation and classification, smooth
 * stitching of predictions into a probability map, and heat maps (overview
 * and a Deep Zoom overlay pyramid on the slide's grid).
 */
export { ToolboxError } from './errors.js';
export { countSet, MAX_MASK_PIXELS, writeMaskPng, type Mask } from './mask.js';
export { fillSmallHoles, histogram, otsuThreshold, removeSmallObjects } from './morphology.js';
export { fillRegion, fillRing, firstCentreFrom, type RasterGrid } from './raster.js';
export {
  DEFAULT_MIN_AREA_PX2,
  DEFAULT_MIN_AREA_UM2,
  DEFAULT_TISSUE_LONG_SIDE,
  DEFAULT_TISSUE_MPP,
  saveTissueMask,
  tissueMask,
  tissueMaskGeometry,
  tissueMaskSidecar,
  type AreaUnit,
  type TissueMask,
  type TissueMaskOptions,
  type TissueMaskParameters,
  type TissueMethod,
} from './tissue-mask.js';
export {
  DEFAULT_XML_DOWNSAMPLE,
  LAYER_PRESETS,
  layerMask,
  loadAnnotations,
  parseLayerMapping,
  regionsMask,
  saveXmlMasks,
  selectLayers,
  xmlMaskGrid,
  xmlMasks,
  type LayerMask,
  type LayerName,
  type MaskGrid,
  type XmlMasksOptions,
} from './xml-masks.js';
export {
  generatePatches,
  MAX_PATCH_SIZE,
  planPatches,
  type PatchesOptions,
  type PatchesParameters,
  type PatchesResult,
  type PatchFormat,
  type PatchLabel,
  type PatchRecord,
} from './patches.js';
export {
  DEFAULT_STITCH_DOWNSAMPLE,
  DEFAULT_STRIP_HEIGHT,
  loadPredictions,
  parsePredictions,
  quantise16,
  readProbabilityImage,
  STITCH_WINDOWS,
  stitch,
  stitchGrid,
  stitchStrips,
  stitchToFloat,
  WINDOW_FLOOR,
  windowAt,
  type ParseOptions,
  type Prediction,
  type ProbabilityImage,
  type StitchGrid,
  type StitchOptions,
  type StitchResult,
  type StitchStripOptions,
  type StitchWindow,
  type Strip,
} from './stitch.js';
export {
  colourOf,
  colourTable,
  COLORMAPS,
  heatmap,
  loadProbabilityMap,
  OVERLAY_NAME,
  planHeatmap,
  renderRegion,
  type Colormap,
  type HeatmapOptions,
  type HeatmapResult,
  type ProbabilityMap,
  type Sampling,
} from './heatmap.js';
export { simplify, traceOutlines, type Outline, type TraceOptions } from './contours.js';
export { outlinesFromProbabilityMap, type MapOutlineOptions } from './map-outlines.js';
export { maskTiffLevels, saveXmlMaskTiffs, writeLayerMaskTiff, type MaskTiffLevel, type MaskTiffOptions, type MaskTiffResult } from './mask-tiff.js';
