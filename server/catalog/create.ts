import type { Database } from '../db/index.js';
import { SlidesRepository } from './slides.repository.js';

/** The catalog's slide records, whatever their status, as the services and the command line read them. */
export function createSlidesRepository(db: Database): SlidesRepository {
  return new SlidesRepository(db.knex);
}
