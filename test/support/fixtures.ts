import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ImplementationFn } from 'ava';
import { packageRoot } from '../../server/package-info.js';
import { testNeeding } from './requirements.js';

/**
 * The real slides and annotation files in `../shared/fixtures` (where each
 * comes from: `../shared/fixtures/SOURCES.md`). Tests that read them use
 * `fixtureTest`: they skip with a message where the folder is absent, and
 * fail instead when SLIDEBANK_REQUIRE_FIXTURES=1 (as in CI), so they can
 * never skip unseen.
 */
export const fixturesDir = process.env.SLIDEBANK_FIXTURES_DIR ?? path.resolve(packageRoot, '..', 'shared', 'fixtures');

export function fixturesStatus(dir = fixturesDir, env = process.env): 'present' | 'missing' | 'required-but-missing' {
  if (existsSync(dir)) return 'present';
  return env.SLIDEBANK_REQUIRE_FIXTURES === '1' ? 'required-but-missing' : 'missing';
}

/**
 * The fixtures by name, pinned by their SHA-256, so a
 * test never draws conclusions from a different file under a familiar name.
 */
export const FIXTURES = {
  'CMU-1-Small-Region.svs': 'ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7',
  'tcga-cr-7395-01a-01-ts1.svs': '77da93f125bfc55570b9731af309b81904dc2648722103d7c3bf5db4f8a6a365',
  'small.svs': '01ab0fea0c0bf62e67e22f2f754c4be40c16a286d112584a7edd6e2e49014122',
  'unreadable.svs': '393e1995e46ec5c2ea3f1ec35dc8ccb58fb9e2a4fcd0d9077b93db200226df75',
  'CropBreastSlide.tiff': '182265d89fbc59c0a1b05888a4c8bd7e8a70e4fc7c3c01142175ffe41ca44f74',
  'boxes.tiff': '785517d0bcd91745f84faf85c7afa9541aac051ee78fdcd668749c1f506183fc',
  'unopenable.tiff': '46e6c28ae5a050ba8c17bc0dc91f6bba87b1f9b831da283b1e717e21af6c6af6',
  'NP040-16_pTDP43_RVC.xml': 'fd38f212f5806bfb46387486d8574f50cbdfcd2295a1a75943915e3217428326',
  'NP391-16_PLP_LVC_20x.xml': '8e126e060d30fac16bdb32a0a996e2dffe6a8aeb93a6e469f9419095a151de04',
  'imagescope_xml_utils-test.xml': '0d47f49af7f5c69e5211008541379fcbc452de89673cb8fee32884257257e6e3',
  'wsi_annotations_kit-test_annotation.xml': 'be38dc12205c25652a907b834ac37175eea18e90597591c8d9cb60459485257c',
  'generated/aperio-synthetic-6000x4000.svs': '531534537e21588110f8b59a8d99681cb49d3e6716c85ba3255d36ecad1b5c5e',
  'ndpi/test3-DAPI.ndpi': '9294d31f304f20ef1df1e08650d3f225b8ed44db8b2dc0d52f584449f85bdca2',
  'ndpi/test3-TRITC.ndpi': 'f02985d30aa38060e83c9477a4435cb81b2a0a234d3d664195dfc5a4e2657be8',
} as const;
export type FixtureName = keyof typeof FIXTURES;

export function fixture(name: FixtureName): string {
  return path.join(fixturesDir, name);
}

/** Why the fixtures cannot be read here, or undefined when they can. */
export function fixturesProblem(dir = fixturesDir): string | undefined {
  return existsSync(dir) ? undefined : `${dir} is absent`;
}

/** A test that reads the fixtures: see `testNeeding` (./requirements.ts) for where it skips and where it fails. */
export function fixtureTest(title: string, implementation: ImplementationFn<[]>): void {
  testNeeding([fixturesProblem()], title, implementation);
}
