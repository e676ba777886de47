// worker_threads entry for BatchLoader prefetching: builds batches ahead and transfers them.
import { parentPort, workerData } from 'node:worker_threads';
import { BatchProducer, batchTransferList, type LoaderReply, type LoaderRequest, type LoaderWorkerInit } from '../batch.js';
import { ShardDataset } from './reader.js';

const init = workerData as LoaderWorkerInit;
const port = parentPort!;
let producer: BatchProducer | null = null;
let failed = false;
try {
  producer = new BatchProducer(ShardDataset.open(init.dir, init.split), init.opts, init.position);
} catch (e) {
  failed = true;
  port.postMessage({ type: 'error', message: (e as Error).message } satisfies LoaderReply);
}
port.on('message', (m: LoaderRequest) => {
  if (m.type === 'stop') {
    port.close();
    return;
  }
  if (failed || !producer) return;
  for (let k = 0; k < m.n; k++) {
    try {
      const batch = producer.next();
      port.postMessage({ type: 'batch', batch, position: producer.position() } satisfies LoaderReply, batchTransferList(batch));
    } catch (e) {
      failed = true;
      port.postMessage({ type: 'error', message: (e as Error).message } satisfies LoaderReply);
      return;
    }
  }
});
