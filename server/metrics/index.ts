/** Prometheus metrics and operators' health details. */
export { AppMetrics, type MetricsSources } from './app-metrics.js';
export { AddressAllowList } from './allow-list.js';
export { healthDetails, type FolderHealth, type HealthDetails } from './health-details.js';
export { MetricsRepository } from './metrics.repository.js';
