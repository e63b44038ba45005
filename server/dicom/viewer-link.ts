import { z } from 'zod';

/**
 * The link from a slide's page to a DICOMweb viewer (Slim, OHIF, …), made
 * from `dicom.viewerUrl`: a URL template whose placeholders name the slide's
 * study and series as Slidebank's DICOMweb serves them, and that DICOMweb's
 * root, for viewers that take the server from the address.
 */

/** The placeholders a template may hold; `{study}` it must. */
export const VIEWER_URL_PLACEHOLDERS = ['dicomweb', 'study', 'series'] as const;
export type ViewerUrlPlaceholder = (typeof VIEWER_URL_PLACEHOLDERS)[number];

const PLACEHOLDER = /\{([^{}]*)\}/g;
const SAMPLE: Record<ViewerUrlPlaceholder, string> = { dicomweb: 'https://slidebank.example/dicomweb', study: '1.2.3', series: '1.2.3.4' };

/** Why `template` cannot be a viewer's URL template (undefined when it can, or when it is empty: no viewer). */
export function viewerUrlProblem(template: string): string | undefined {
  if (template === '') return undefined;
  const names = [...template.matchAll(PLACEHOLDER)].map((match) => match[1]!);
  const unknown = names.find((name) => !(VIEWER_URL_PLACEHOLDERS as readonly string[]).includes(name));
  if (unknown !== undefined) return `{${unknown}} is not a placeholder: use {study}, {series} and {dicomweb}`;
  if (!names.includes('study')) return 'must hold {study}, the slide’s StudyInstanceUID, such as https://slim.hospital.example/studies/{study}/series/{series}';
  let url: URL;
  try {
    url = new URL(fillViewerUrl(template, SAMPLE));
  } catch {
    return 'must be an http:// or https:// URL once its placeholders are filled in';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  return undefined;
}

/** The template with each placeholder replaced by its value, URL-encoded (the DICOMweb root's slashes too, as a query parameter needs). */
export function fillViewerUrl(template: string, values: Record<ViewerUrlPlaceholder, string>): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => ((VIEWER_URL_PLACEHOLDERS as readonly string[]).includes(name) ? encodeURIComponent(values[name as ViewerUrlPlaceholder]) : whole));
}

/** What the slide's own answer (`GET /api/slides/{id}`) says about the slide as DICOMweb serves it. */
export const slideDicomweb = z
  .object({
    studyInstanceUid: z.string().meta({ description: 'The StudyInstanceUID under which /dicomweb/ serves the slide' }),
    seriesInstanceUid: z.string().meta({ description: 'The SeriesInstanceUID under which /dicomweb/ serves the slide' }),
    viewerUrl: z.string().nullable().meta({ description: 'The slide in the DICOMweb viewer dicom.viewerUrl names; null when none is configured' }),
  })
  .meta({ id: 'SlideDicomweb' });
export type SlideDicomweb = z.infer<typeof slideDicomweb>;

/** The slide's DICOMweb UIDs and, where a viewer is configured, its link; `root` is the DICOMweb root as the requester reaches it. */
export function slideDicomwebOf(viewerUrl: string, root: string, uids: { study: string; series: string }): SlideDicomweb {
  return {
    studyInstanceUid: uids.study,
    seriesInstanceUid: uids.series,
    viewerUrl: viewerUrl === '' ? null : fillViewerUrl(viewerUrl, { dicomweb: root, study: uids.study, series: uids.series }),
  };
}

/** The slide page's DICOMweb facts: the series' UIDs as DICOMweb serves the slide, and the viewer link from `dicom.viewerUrl`. */
export class DicomViewerLinks {
  constructor(
    private readonly viewerUrl: string,
    /** The study and series DICOMweb serves slide `id` under; undefined when it does not serve it. */
    private readonly servedUids: (slideId: number) => Promise<{ study: string; series: string } | undefined>,
  ) {}

  /** Null when DICOMweb does not serve the slide (then there is nothing to link to). */
  async of(slideId: number, dicomwebRoot: string): Promise<SlideDicomweb | null> {
    const uids = await this.servedUids(slideId);
    return uids ? slideDicomwebOf(this.viewerUrl, dicomwebRoot, uids) : null;
  }
}
