export { loadConfig, type Config, type LoadedConfig, type LoadConfigOptions } from './load.js';
export { describeDatabase, maskDatabaseUrl, parseDatabaseUrl, type DatabaseTarget } from './database-url.js';
export { envNameFor } from './env.js';
export { effectiveConfig, type ConfigEntry } from './describe.js';
