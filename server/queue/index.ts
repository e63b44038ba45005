/**
 * The toolbox job queue: jobs in the database, claimed fairly between users
 * by worker processes under renewable leases, with retries, recovery of dead
 * workers' jobs, cancellation and a run-time limit; per-user quotas and output
 * budgets checked when a job is submitted; heat-map overlay names held by
 * their publisher; the service the HTTP routes call; the scheduled job that
 * preprocesses new slides; the lower CPU and I/O priority workers run at.
 */
export { createQueueService, createQueueWorker, catalogSlides, overlayPublisher, resultsRoot } from './create.js';
export { QueueRepository } from './queue.repository.js';
export { OverlayNamesRepository, type OverlayName } from './overlay-names.repository.js';
export { OverlayPublisher, randomOverlayName } from './overlay-publisher.js';
export { QueueService, type JobFilter, type JobSubmission } from './queue.service.js';
export { jobAnswer, jobList, jobView, type JobAnswer, type JobList, type JobView } from './views.js';
export { QueueWorker, describeFailure, resultsDir } from './worker.js';
export { startWorkerProcesses, type WorkerProcesses } from './processes.js';
export { preprocessJob } from './preprocess.job.js';
export * from './model.js';
export { ioPriorityOf, lowerOwnPriority, niceOf, type AppliedPriority, type BackgroundPriority, type IoPriority } from './priority.js';
