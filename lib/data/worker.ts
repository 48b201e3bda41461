// A DataLoader worker thread (run by piscina): builds whole batches, as torch's DataLoader
// workers do, and hands the pixels back without a copy (moved, not cloned).
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { BatchBuilder, type BatchFailure, type BatchTask, type BuilderConfig, type BuiltBatch } from './batch';

const builder = new BatchBuilder(workerData as BuilderConfig);

export default async function buildBatch(task: BatchTask): Promise<unknown> {
  if (process.env.CRB_TEST_WORKER_EXIT_AT_BATCH !== undefined && task.batch === Number(process.env.CRB_TEST_WORKER_EXIT_AT_BATCH)) {
    // Test hook: a worker that dies mid-epoch must be an error in the main thread, never a hang.
    process.exit(70);
  }
  const out: BuiltBatch | BatchFailure = await builder.build(task);
  if ('failure' in out) return out;
  return move({
    [transferableSymbol]: [out.pixels.buffer, out.labels.buffer],
    [valueSymbol]: out,
  } as never);
}
