// What the worker tests need from the queue beyond its public face.
export { resultsDir, resultsRoot } from '../../server/queue/index.js';
export { TASKS as TASKS_FOR_TESTS } from '../../server/queue/tasks/index.js';
