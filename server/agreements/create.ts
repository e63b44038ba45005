import { AuditRepository } from '../audit/index.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logging.js';
import { createMailer, mailSiteFrom, type Mailer } from '../mail/index.js';
import { AgreementsRepository } from './agreements.repository.js';
import { AgreementsService } from './agreements.service.js';

export function createAgreementsService(config: Config, db: Database, log: Logger, mailer: Mailer = createMailer(config, log)): AgreementsService {
  return new AgreementsService({
    repository: new AgreementsRepository(db.knex),
    audit: new AuditRepository(db.knex),
    mailer,
    site: mailSiteFrom(config),
    dataDir: config.paths.data,
    log,
  });
}
