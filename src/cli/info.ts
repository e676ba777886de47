// `linkbert info [--json]`: what this build can do.
import type { Command } from 'commander';
import { loadNative, loadedAddonKind } from '../native.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../native.js';

export function register(program: Command): void {
  program
    .command('info')
    .description('show the build (CPU or CUDA), backends, devices, SIMD level and threads')
    .option('--json', 'print JSON')
    .option('--cuda', 'load the CUDA addon (build-cuda/) instead of the CPU one')
    .action((opts: { json?: boolean; cuda?: boolean }) => {
      const native = loadNative(opts.cuda ? 'cuda' : undefined);
      const i = native.info();
      const backends = ['ref', 'cpu', ...(i.cuda_compiled && i.cuda_devices > 0 ? ['cuda'] : [])];
      const out = {
        addon: loadedAddonKind(),
        build: i.build,
        cuda_compiled: i.cuda_compiled,
        cuda_devices: i.cuda_devices,
        cuda_device_names: i.cuda_device_names,
        cuda_unavailable: i.cuda_unavailable ?? null,
        cuda_addon_built: existsSync(path.join(repoRoot, 'build-cuda', 'Release', 'linkbert_cuda.node')),
        backends,
        simd: i.simd,
        threads: i.threads,
        cpu_bf16_dot: i.cpu_bf16_dot,
        ops: i.ops,
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      const lines = [
        `linkbert addon: ${out.addon} build (${out.build})`,
        `backends:       ${backends.join(', ')}${i.cuda_compiled ? '' : '  (cuda: built without CUDA: run `npm run build:cuda`)'}`,
        `cuda devices:   ${i.cuda_devices}${i.cuda_devices ? ' (' + i.cuda_device_names.join(', ') + ')' : i.cuda_unavailable ? ' (' + i.cuda_unavailable + ')' : ''}`,
        `cpu simd:       ${i.simd}`,
        `cpu threads:    ${i.threads}`,
        `cpu bf16 GEMM:  ${i.cpu_bf16_dot ? 'AVX512-BF16 dot products (--precision bf16 is the faster choice here)' : 'widened to f32 (no AVX512-BF16: fp32 is the faster choice here)'}`,
        `ops:            ${i.ops.join(' ')}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
