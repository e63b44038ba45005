import type { CatalogSort } from './catalog.repository.js';
import type { CatalogFilter } from './filter.js';
import type { StaffFacet } from './slides-table.js';

/** A catalog search: which published slides (the filter), in which order, and which window of them. */
export interface CatalogQuery {
  filter: CatalogFilter;
  /** Staff's filters on what the slides came from (scanner vendor, original format); refused for anyone else. */
  origins?: Partial<Record<StaffFacet, string[]>>;
  sort: CatalogSort;
  offset: number;
  limit: number;
}

/** The orders a search is sorted in, by name: a key, descending when it starts with `-`. */
export const CATALOG_SORTS = {
  name: { key: 'name', direction: 'asc' },
  '-name': { key: 'name', direction: 'desc' },
  created: { key: 'created', direction: 'asc' },
  '-created': { key: 'created', direction: 'desc' },
  size: { key: 'size', direction: 'asc' },
  '-size': { key: 'size', direction: 'desc' },
} as const satisfies Record<string, CatalogSort>;
export type CatalogSortName = keyof typeof CATALOG_SORTS;
export const DEFAULT_CATALOG_SORT: CatalogSortName = '-created';
