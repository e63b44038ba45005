import { formatFilter, type CatalogFilter } from '../catalog/filter.js';

/**
 * Which slides a bundle or a manifest is for: slide ids, or a catalog
 * filter (the published slides the catalog search shows for it).
 */
export type Selection = { kind: 'slides'; ids: number[] } | { kind: 'filter'; filter: CatalogFilter };

/** How a selection is written down in the README, the manifest and the audit log. */
export function describeSelection(selection: Selection): { filter: string } | { slides: number[] } {
  return selection.kind === 'filter' ? { filter: formatFilter(selection.filter) } : { slides: selection.ids };
}
