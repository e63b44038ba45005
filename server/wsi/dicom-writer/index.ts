/**
 * DICOM whole-slide export, a pure library: a slide file as a VL Whole Slide
 * Microscopy series without recompressing its tiles. Three parts, so that a
 * DICOMweb server can describe and serve the same instances from the slide
 * file: the attributes of each instance (attributes.ts), the frame index
 * (frames.ts: which stored tile becomes frame N, and the JPEG surgery), and
 * the file writer (file-writer.ts). See docs/dicom.md, "Writing".
 */
export { instanceAttributes, WSM_SOP_CLASS, type InstanceDescription, type SlideDescription } from './attributes.js';
export { decimalString, encodeDataset, type Dataset, type Element, type Vr } from './elements.js';
export {
  describeSlide,
  exportSlideAsDicom,
  levelFrames,
  levelInstance,
  openDicomSource,
  srgbProfile,
  thumbnailFrame,
  thumbnailInstance,
  type DicomSource,
  type ExportedInstance,
  type ExportOptions,
  type ExportResult,
} from './export.js';
export { writeInstanceFile, type InstanceFile, type OffsetTableChoice } from './file-writer.js';
export { BACKGROUND, planLevel, readFrame, readFrames, TransferSyntax, type FramePlan, type FrameRecipe, type PhotometricInterpretation } from './frames.js';
export { IMPLEMENTATION_CLASS_UID, seriesUids, uidRootProblem, type SeriesUids } from './uids.js';
