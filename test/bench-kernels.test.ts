// bench-kernels.test.ts: the shape of `linkbert bench kernels --json` (no timing is asserted): every row
// names its op, device, shape, median and rate; memory-bound rows carry their same-bytes copy peer and,
// outside --quick, the ratio to the 256 MB streaming copy timed before and after the cases.
import test from 'ava';

import { benchKernels, kernelOps } from '../src/bench/kernels.js';

test('bench kernels (gelu): rows, the same-bytes copy peer and the streaming copy reference', async (t) => {
  const { machine, results, summary } = await benchKernels({ device: 'cpu', python: 'python3', only: 'gelu', minTime: '0.01' });
  t.is(machine.threads !== undefined, true);
  const gelu = results.filter((r) => r.op === 'gelu');
  t.true(gelu.length >= 4, `${gelu.length} gelu rows`);
  for (const r of results) {
    t.is(r.device, 'cpu');
    t.is(typeof r.shape, 'object');
    t.true(r.median_ms > 0 && r.gbps! > 0, `${r.op} ${JSON.stringify(r.shape)}: ${r.median_ms} ms, ${r.gbps} GB/s`);
  }
  const stream = summary.memcpy_stream_gbps as { before: number; after: number; bytes: number };
  t.is(stream.bytes, 2 ** 29, '256 MB read + 256 MB written');
  t.true(stream.before > 0 && stream.after > 0);
  for (const r of gelu) {
    t.true(Math.abs(r.vs_memcpy! - r.gbps! / r.memcpy_gbps!) < 1e-12);
    t.true(Math.abs(r.vs_memcpy_stream! - r.gbps! / Math.max(stream.before, stream.after)) < 1e-12);
  }
  t.is(summary.gelu_vs_memcpy_min, Math.min(...gelu.map((r) => r.vs_memcpy!)));
  t.is(summary.gelu_vs_memcpy_stream_min, Math.min(...gelu.map((r) => r.vs_memcpy_stream!)));
  t.true(results.filter((r) => r.op === 'copy').every((r) => r.vs_memcpy_stream === undefined), 'copy rows are peers, not compared');
});

test('bench kernels --quick: no streaming copy (it is 512 MB of traffic per run)', async (t) => {
  const { results, summary } = await benchKernels({ device: 'cpu', python: 'python3', only: 'gelu', minTime: '0.01', quick: true });
  t.is(summary.memcpy_stream_gbps, undefined);
  t.true(results.some((r) => r.op === 'gelu' && r.vs_memcpy !== undefined && r.vs_memcpy_stream === undefined));
});

test('bench kernels: --only with an unknown op, a bad --min-time or --threads is refused before timing anything', async (t) => {
  const valid = `valid ops: ${kernelOps().join(', ')}`;
  t.true(['matmul', 'attention', 'layernorm', 'gelu', 'fill', 'copy', 'adamw'].every((op) => kernelOps().includes(op)));
  const run = (o: Partial<Parameters<typeof benchKernels>[0]>) => benchKernels({ device: 'cpu', python: 'python3', minTime: '0.01', quick: true, ...o });
  await t.throwsAsync(run({ only: 'nosuchop' }), { message: `--only: unknown op "nosuchop"; ${valid}` });
  await t.throwsAsync(run({ only: 'fill,nosuch' }), { message: `--only: unknown op "nosuch"; ${valid}` }, 'not dropped silently');
  for (const m of ['abc', '0', '-1', ''])
    await t.throwsAsync(run({ only: 'fill', minTime: m }), { message: `--min-time: "${m}" must be a positive number` });
  await t.throwsAsync(run({ only: 'fill', threads: '0' }), { message: '--threads: "0" must be an integer in [1, 1024]' });
  await t.throwsAsync(run({ device: 'foo' }), { message: '--device: "foo" must be cpu or cuda' });
});
