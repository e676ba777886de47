// native.ts: loads the addon. The CPU build (build/Release/linkbert.node, made by `npm install`) is the
// default; the CUDA build (build-cuda/Release/linkbert_cuda.node, `npm run build:cuda`) is used only
// when asked for (LINKBERT_ADDON=cuda or loadNative('cuda')), so it never shadows the CPU build.
// One process loads one addon: tensors of one addon mean nothing to the other.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type DType = 'f32' | 'bf16' | 'i32';
export type Device = 'cpu' | 'cuda';
export type BackendName = 'ref' | 'cpu' | 'cuda';

export interface NativeInfo {
  build: 'cpu' | 'cuda';
  cuda_compiled: boolean;
  cuda_devices: number;
  cuda_device_names: string[];
  cuda_unavailable?: string;
  simd: string;
  threads: number;
  /** the cpu backend's bf16 GEMM uses AVX512-BF16 dot products (else it widens bf16 to f32) */
  cpu_bf16_dot: boolean;
  ops: string[];
}

export interface NativeStats { live_tensors: number; host_bytes: number; cuda_bytes_in_use: number; cuda_bytes_reserved: number }

/** The raw addon: every call is validated natively; bad input throws TypeError/RangeError. */
export interface NativeAddon {
  alloc(shape: readonly number[], dtype: DType, device: Device): number;
  view(base: number, offsetElements: number, shape: readonly number[], dtype: DType): number;
  dispose(id: number): boolean;
  isAlive(id: number): boolean;
  stats(): NativeStats;
  toArray(id: number): Float32Array | Int32Array;
  setData(id: number, data: Float32Array | Int32Array, offsetElements?: number): void;
  synchronize(): Promise<void>;
  /** CUDA builds: device time (ms) of the work enqueued between start and stop; stop waits for it. */
  cudaTimerStart(): void;
  cudaTimerStop(): number;
  /** CUDA builds: records an event on the stream, returns its index (0 after cudaTimerClear()). */
  cudaTimerMark(): number;
  /** Device ms from mark a to mark b; waits for b. */
  cudaTimerElapsed(a: number, b: number): number;
  cudaTimerClear(): void;
  info(): NativeInfo;
  setNumThreads(n: number): void;
  /** Caps the cpu backend's ISA ("avx512" = all the CPU has, the default; "avx2"; "generic"), so one machine runs the paths a smaller CPU runs; also LINKBERT_CPU_ISA at load. Returns the simd level info() then reports. */
  setCpuIsa(name: 'avx512' | 'avx2' | 'generic'): string;
  run(op: string, pass: 'forward' | 'backward', backend: BackendName, args: Record<string, unknown>): void;
  supports(backend: BackendName, op: string, dtype: DType): boolean;
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let loaded: { kind: 'cpu' | 'cuda'; addon: NativeAddon } | undefined;

function addonPath(kind: 'cpu' | 'cuda'): string {
  return kind === 'cpu'
    ? path.join(repoRoot, 'build', 'Release', 'linkbert.node')
    : path.join(repoRoot, 'build-cuda', 'Release', 'linkbert_cuda.node');
}

/** Loads the addon once per process. `kind` defaults to LINKBERT_ADDON or 'cpu'. */
export function loadNative(kind?: 'cpu' | 'cuda'): NativeAddon {
  const want = kind ?? (process.env.LINKBERT_ADDON === 'cuda' ? 'cuda' : undefined);
  if (loaded) {
    if (want && want !== loaded.kind)
      throw new Error(`the ${loaded.kind} addon is already loaded in this process; start a new process for ${want}`);
    return loaded.addon;
  }
  const k = want ?? 'cpu';
  const p = addonPath(k);
  if (!existsSync(p)) {
    throw new Error(
      k === 'cuda'
        ? `built without CUDA (no CUDA addon at ${p}): run \`npm run build:cuda\``
        : `native addon not found at ${p}: run \`npm install\` (or \`npm run build\`)`,
    );
  }
  const require = createRequire(import.meta.url);
  loaded = { kind: k, addon: require(p) as NativeAddon };
  return loaded.addon;
}

/** Which addon this process uses (loading the default one if none is loaded yet). */
export function loadedAddonKind(): 'cpu' | 'cuda' {
  loadNative();
  return loaded!.kind;
}

/** Picks the addon for a device request: 'cuda' needs the CUDA build. */
export function nativeFor(device: Device): NativeAddon {
  return loadNative(device === 'cuda' ? 'cuda' : undefined);
}

/**
 * The addon's entry points for an optional native path (e.g. the data pipeline's), or null when the
 * addon is missing, lacks `probe` (an older build), or the environment variable `off` is '0': callers
 * then run their TypeScript equivalent, which gives the same results.
 */
export function nativeOptional<T>(probe: string, off: string): T | null {
  if (process.env[off] === '0') return null;
  try {
    const a = loadNative() as unknown as Record<string, unknown>;
    return typeof a[probe] === 'function' ? (a as unknown as T) : null;
  } catch {
    return null;
  }
}
