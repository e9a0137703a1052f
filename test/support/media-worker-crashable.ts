/**
 * The real media worker, plus test-only messages: `{ type: 'test-crash' }` ends the thread
 * with exit code 3, as an uncaught failure in the media thread would; `{ type: 'test-hang' }`
 * blocks its event loop for good, as an endless loop would.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runMediaWorker } from '../../src/call/media-worker.js';
import { isMediaWorkerData } from '../../src/call/media-worker-protocol.js';

if (parentPort && isMediaWorkerData(workerData)) {
  parentPort.on('message', (m: { type?: string }) => {
    if (m.type === 'test-crash') process.exit(3);
    if (m.type === 'test-hang') for (;;);
  });
  runMediaWorker(parentPort, workerData);
}
