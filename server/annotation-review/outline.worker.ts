/** A worker thread of the outline pool (outline-pool.ts): runs outlineOperations one message at a time. */
import { parentPort } from 'node:worker_threads';
import { outlineOperations, type OutlineOperation } from './outline-work.js';
import { serializeError, type WorkerAnswer, type WorkerRequest } from './worker-pool.js';

const port = parentPort!;
port.on('message', (request: WorkerRequest) => {
  const operation = outlineOperations[request.operation as OutlineOperation] as (...args: unknown[]) => Promise<unknown>;
  void Promise.resolve()
    .then(() => operation(...request.args))
    .then(
      (value): WorkerAnswer => ({ id: request.id, ok: true, value }),
      (error: unknown): WorkerAnswer => ({ id: request.id, ok: false, error: serializeError(error) }),
    )
    .then((answer) => port.postMessage(answer));
});
