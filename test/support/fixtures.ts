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
  'dicom/google-pipeline/multi_frame_jpeg2000_camelyon_challenge_image.dcm': '17dc37a993b4ced53ee9de4e894a594522ade83659f1a892245dd29868963596',
  'dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm': '96973255cabca4edd9fb2e795af053b87a2d1643904e796253ee1cd6aeea8fb7',
  'dicom/highdicom/sm_image.dcm': 'a2d672f55c00ff24f9c836b3b01f9d2d3b254731b800ef9a9ea33f373d315af5',
  'dicom/highdicom/sm_image_grayscale.dcm': '10993f93a9c019863f5d4144a600645f5404028af84811903b77c0789a58f83c',
  'dicom/highdicom/sm_image_jpegls.dcm': '500eea66aec30537142e9519515b11d0e451b2d99385060f5725e57011cad2ee',
  'dicom/pixelmed/boxes_0.dcm': '551530cb1cb6ad2319d7d590349b154dd4ac3269926e8ff69ebcd292816a7ddc',
  'dicom/pixelmed/boxes_1.dcm': '77f17daaa1cc47987109667547906ddd70a705929b8e8266d2c652e2e8b514cc',
  'dicom/wg26-bpaec/10_0': 'd9006cd91d9209feca75f4e534d4684c27b1446b590a2acb35733598ff9cff72',
  'dicom/wg26-bpaec/11_0': '0b5886d1c108a55b3b66cefaed55785db6f839725fee5522a83c03bbb2de5582',
  'dicom/wg26-bpaec/12_0': 'ce9ef1c889d2d0d834e0715bb05939b70c6f3da3186761dc399151bed3b92bbd',
  'dicom/wg26-bpaec/1_Map': 'fe5dca91a838c0b635135cdbf8535202d41fb3c52129b80a15e119603f07540f',
  'dicom/wg26-bpaec/2': '83fcdbf316a9e8652f334a46407d38833bc9f8500d08a2fec592e6b3c7f504d6',
  'dicom/wg26-bpaec/5_0': '9e9b9edc6ab2bbc2b7644e659478496de7bcc88330014f88c39cecbd8d8c23c2',
  'dicom/wg26-bpaec/6_0': '1ad7226469d8b46cab707a2c7b14197c1e313d46e60834bed7d6276aa52afe77',
  'dicom/wg26-bpaec/7_0': '48fc88b844fdb05c19d2a0223e4834b14fb9dc2bf620a5bf9de8445833a85a36',
  'dicom/wg26-bpaec/8_0': '7c0dfddf3f99659f3fcac6cf88ad84a448b5d1ae2e0b4e0c7e6d8bb2f0ac4155',
  'dicom/wg26-bpaec/9_0': '30138a91bc3445fadf17b58b2e2e60857dabaffda050aa2b433a9cba94a0963d',
  'dicom/wsi2dcm/jpeg.dicom': '4d674efca57870096e6e8dc138ee77e0e0a3ad483732974f4e6b8c08658d363c',
  'dicom/wsi2dcm/jpeg2000.dicom': '6dd1bcde339cb486940e694ba7394b5bc22757a587dff49b4a83faf65f7d4dd8',
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
