/** The slide engine: a pure library (no HTTP, no database) shared by the server, the CLI and the jobs. */
export { DEFAULT_MAX_RENDER_SOURCE_PIXELS, Slide, type SlideLevel, type OpenSlideOptions } from './slide.js';
export { renderThreads, SlidePool } from './slide-pool.js';
export { DecodedTileCache } from './tile-cache.js';
export { scaledJpegStatus, scaledJpegUnavailable, type ScaledJpegStatus } from './decode/scaled-jpeg.js';
export { pageCacheReadUnavailable } from './tiff/page-cache.js';
export { DeepZoom, deepZoomDescriptor, deepZoomGeometry, deepZoomTileRect, encode, OPENSLIDE_GRID, type DeepZoomGrid, type DeepZoomLevel, type DeepZoomOptions, type TileMaking, type TileFormat, type TileRequest, type TileSource } from './deepzoom.js';
export { WsiError, type WsiErrorCode } from './errors.js';
export { largestRender, planLevel0Region, renderablePlan, renderLevel0Region, MAX_RENDER_PIXELS, type Level0Region, type RenderPlan } from './render.js';
export type { AssociatedName } from './formats/format.js';
/** A DICOM series' instances and identifying attributes, for those who handle DICOM beyond reading pixels (de-identification). */
export { openDicomSeries, type DicomSeries } from './formats/dicom/index.js';
export type { RgbImage } from './decode/pixels.js';
