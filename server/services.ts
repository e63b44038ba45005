import { interimSlideAccess, type SlideAccessPolicy } from './access/slide-access.js';
import { CatalogRepository } from './catalog/catalog.repository.js';
import { CatalogService } from './catalog/catalog.service.js';
import { SlidesRepository } from './catalog/slides.repository.js';
import type { Config } from './config/index.js';
import type { Database } from './db/index.js';
import { loadVocabulary } from './ingest/vocabulary.js';
import type { Logger } from './logging.js';
import { TilesService } from './tiles/tiles.service.js';

/** The services the HTTP layer (and later the jobs) call, each given only the repositories it uses. */
export interface Services {
  tiles: TilesService;
  slideAccess: SlideAccessPolicy;
  catalog: CatalogService;
  close(): Promise<void>;
}

export function createServices(config: Config, db: Database, log: Logger): Services {
  const tiles = new TilesService(new SlidesRepository(db.knex), config.paths.slides, config.tiles, log);
  return {
    tiles,
    slideAccess: interimSlideAccess,
    catalog: createCatalogService(config, db),
    close: () => tiles.close(),
  };
}

export function createCatalogService(config: Config, db: Database): CatalogService {
  return new CatalogService(new CatalogRepository(db.knex), loadVocabulary(config.ingest.vocabularies), config.paths.thumbnails);
}
