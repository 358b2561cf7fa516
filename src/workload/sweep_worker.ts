/**
 * A sweep's worker thread (sweep.ts runPool): runs one point at a time, as the main thread asks,
 * and answers with its outcome. A run that throws is answered as that point's error; only a
 * crash of the thread itself (out of memory) reaches the pool as a dead worker.
 */
import { parentPort } from 'node:worker_threads';
import { runPoint, type WorkerAnswer, type WorkerJob } from './sweep.ts';

const port = parentPort;
if (!port) throw new Error('sweep_worker.ts runs as a worker thread of a sweep');
port.on('message', (job: WorkerJob) => {
  const answer: WorkerAnswer = { index: job.index, ...runPoint(job.text, job.file) };
  port.postMessage(answer);
});
