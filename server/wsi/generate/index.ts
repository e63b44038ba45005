/** The synthetic slide generator: used by the test suite, the demo dataset and the tile benchmark. */
export { makeSlide, SlideOptionsError } from './make-slide.js';
export type { LevelInfo, MakeSlideOptions, MakeSlideResult, SlideTruth } from './make-slide.js';
export type { Point, TumourRegion } from './tissue.js';
