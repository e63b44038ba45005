/**
 * The preprocessing toolbox (seed paper Table 4) as a pure library on top of
 * server/wsi and server/annotations: no HTTP, no database. The CLI
 * (`slidebank toolbox`) and, later, the job workers call it.
 *
 * Done: tissue masks, XML → masks, patch generation and classification.
 * Not yet: smooth stitching of predictions and heat-map pyramids.
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
