// The ISA levels this CPU can run the cpu backend at (setCpuIsa), best first, of those wanted; the
// addon is left at the best one. Tests that loop over them set the level they need at their start:
// the tests in a file run one at a time in one process, and other files run in other processes.
import type { NativeAddon } from '../../src/native.js';

export type CpuIsa = 'avx512' | 'avx2' | 'generic';

export function cpuIsaLevels(addon: NativeAddon, wanted: readonly CpuIsa[] = ['avx512', 'avx2', 'generic']): CpuIsa[] {
  const runs = (['avx512', 'avx2', 'generic'] as const).filter((isa) => {
    try {
      addon.setCpuIsa(isa);
      return true;
    } catch {
      return false;
    }
  });
  addon.setCpuIsa(runs[0] ?? 'generic');
  return runs.filter((isa) => wanted.includes(isa));
}
