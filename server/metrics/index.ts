/** Prometheus metrics and the server's health, public and for operators. */
export { AppMetrics, type MetricsSources } from './app-metrics.js';
export { AddressAllowList } from './allow-list.js';
export { HealthService, type HealthSources } from './health.service.js';
export { MetricsRepository } from './metrics.repository.js';
export { health, healthDetails, type FolderHealth, type Health, type HealthDetails } from './views.js';
