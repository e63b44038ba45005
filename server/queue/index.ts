/**
 * The toolbox job queue: jobs in the database, claimed by worker processes
 * under renewable leases, with retries, recovery of dead workers' jobs and
 * cancellation; the service the HTTP routes call; the scheduled job that
 * preprocesses new slides.
 */
export { createQueueService, createQueueWorker, catalogSlides, resultsRoot } from './create.js';
export { QueueRepository } from './queue.repository.js';
export { QueueService, mayUseToolbox, type JobView } from './queue.service.js';
export { QueueWorker, describeFailure, resultsDir } from './worker.js';
export { startWorkerProcesses, type WorkerProcesses } from './processes.js';
export { preprocessJob } from './preprocess.job.js';
export * from './model.js';
