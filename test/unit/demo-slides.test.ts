import test from 'ava';
import { DEMO_SLIDES, demoSlideOptions } from '../../server/ingest/demo.js';

test('the demo slides are painted as their stain says: immunohistochemistry as H-DAB, H&E pink and purple', (t) => {
  const stains = DEMO_SLIDES.map((_, i) => demoSlideOptions(i, '/tmp/demo').stain);
  t.deepEqual(stains, DEMO_SLIDES.map((slide) => (slide.stain === 'IHC' ? 'ihc' : 'he')));
  t.true(stains.includes('ihc') && stains.includes('he'));
  for (const [i, slide] of DEMO_SLIDES.entries()) {
    if (slide.stain === 'IHC') t.not(slide.marker, '', `demo slide ${i + 1} names its marker`);
  }
  // Deterministic: the same options every time, a seed per slide.
  t.deepEqual(demoSlideOptions(1, '/x'), demoSlideOptions(1, '/x'));
  t.is(new Set(DEMO_SLIDES.map((_, i) => demoSlideOptions(i, '/x').seed)).size, DEMO_SLIDES.length);
});
