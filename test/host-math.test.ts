// The CUDA kernels' host/device helpers that no CPU kernel uses, checked on the CPU: the online softmax
// state (softmax_xent.cu, generic attention) against a two-pass fp64 logsumexp.
import test from 'ava';
import { loadNative } from '../src/native.js';

const host = (loadNative() as unknown as { hostMath: { onlineSoftmaxLse(x: Float32Array, chunk: number): number } }).hostMath;

function lse64(x: Float32Array): number {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const v of x) s += Math.exp(v - m);
  return m + Math.log(s);
}

test('online softmax: logsumexp matches two-pass fp64 for any chunking, incl. ±100 and masked (-inf) values', (t) => {
  let seed = 5;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const cases: [string, Float32Array][] = [
    ['random normal-ish, n=1000', Float32Array.from({ length: 1000 }, () => 4 * (rnd() - 0.5))],
    ['logits at +-100', Float32Array.from({ length: 257 }, (_, i) => (i % 2 ? 100 : -100) + rnd())],
    ['all but one masked', Float32Array.from({ length: 129 }, (_, i) => (i === 77 ? 3.5 : -Infinity))],
    ['increasing (max changes every push)', Float32Array.from({ length: 300 }, (_, i) => i * 0.37)],
    ['single value', Float32Array.of(-2.25)],
  ];
  for (const [name, x] of cases) {
    const want = lse64(x);
    for (const chunk of [1, 3, 32, 128, 100000]) {
      const got = host.onlineSoftmaxLse(x, chunk);
      t.true(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${name}, chunk ${chunk}: ${got} vs ${want}`);
    }
  }
  const masked = Float32Array.from({ length: 10 }, () => -Infinity);
  t.is(host.onlineSoftmaxLse(masked, 4), -Infinity, 'every input masked gives -inf');
  t.throws(() => host.onlineSoftmaxLse(new Float32Array(3), 0), { instanceOf: RangeError });
});
