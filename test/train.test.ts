// End-to-end pretraining on CPU with a very small model: prepare -> pretrain -> checkpoint -> resume ->
// evaluate; exact resume after SIGKILL (losses bit-identical to an uninterrupted run); SIGINT saves and
// exits 0; a corrupt checkpoint gives a clear error; the report renders; bf16 mixed precision trains as
// fp32 does and checkpoints its fp32 masters. Also the user-facing checks: settings validated up front,
// --init-from vocab contents, torn metrics lines, runs with nothing to evaluate, --stop-after-step saves.
import test from 'ava';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, truncateSync, statSync, rmSync, cpSync, appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { syntheticCorpus } from './fixtures/prepare/synthetic.js';
import { prepare } from '../src/data/prepare.js';
import { pretrain, PRETRAIN_DEFAULTS, type PretrainConfig } from '../src/train/train.js';
import { listCheckpoints } from '../src/train/state.js';
import { writeReport } from '../src/train/report.js';
import { loadCheckpoint } from '../src/model/checkpoint/index.js';
import { Command } from 'commander';
import { register, resolvePretrainConfig } from '../src/cli/pretrain.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(repo, 'bin', 'linkbert.js');
const vocab = join(repo, 'test', 'fixtures', 'prepare', 'vocab.txt');

const root = mkdtempSync(join(tmpdir(), 'linkbert-train-'));
const data = join(root, 'data');
const modelCfg = join(root, 'model.json');
let prepared: Promise<void> | undefined;

// A tiny custom model (hidden 32): a step takes milliseconds, so each test stays well under a minute.
function setup(): Promise<void> {
  prepared ??= (async () => {
    const corpus = join(root, 'corpus.jsonl');
    syntheticCorpus(corpus, 80, 7);
    await prepare({ inputs: [corpus], vocab, out: data, maxSeqLen: 32, seed: 3, workers: 0, validFraction: 0.1, mask: 'dynamic' });
    writeFileSync(modelCfg, JSON.stringify({
      model_type: 'bert', vocab_size: 260, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64,
      max_position_embeddings: 64, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu', hidden_dropout_prob: 0.1,
      attention_probs_dropout_prob: 0.1, initializer_range: 0.02,
    }));
  })();
  return prepared;
}

const base = (out: string, extra: Partial<PretrainConfig> = {}): PretrainConfig => ({
  ...PRETRAIN_DEFAULTS, data, out, model: modelCfg, batchSize: 4, maxSteps: 12, lr: 2e-3, warmupSteps: 2, evalEvery: 6, evalBatches: 2,
  saveEvery: 4, saveTotalLimit: 10, logEvery: 1, progress: false, threads: 1, ...extra,
});
const quiet = () => {};
const losses = (run: string) =>
  readFileSync(join(run, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; loss?: number; split?: string })
    .filter((r) => r.split !== 'valid').map((r) => [r.step, r.loss] as const);

function runCli(args: string[]): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LINKBERT_NUM_THREADS: '1' } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) => child.on('exit', (code, signal) => res({ code, signal, stderr })));
  return { child, done };
}
const cliArgs = (out: string, steps: number, extra: string[] = []) => [
  'pretrain', '--data', data, '--out', out, '--config', modelCfg, '--batch-size', '4', '--max-steps', String(steps), '--lr', '2e-3',
  '--warmup-steps', '2', '--eval-every', '6', '--eval-batches', '2', '--save-every', '4', '--save-total-limit', '10', '--log-every', '1',
  '--threads', '1', '--no-progress', ...extra,
];
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

test.after.always(() => rmSync(root, { recursive: true, force: true }));

test.serial('prepare -> pretrain -> checkpoint -> resume -> evaluate', async (t) => {
  await setup();
  const run = join(root, 'e2e');
  const r1 = await pretrain(base(run, { maxSteps: 8 }), quiet);
  t.is(r1.steps, 8);
  t.truthy(r1.finalEval);
  t.true(existsSync(join(run, 'checkpoint-8', 'model.safetensors')));
  t.true(existsSync(join(run, 'checkpoint-8', 'trainer_state.json')));
  t.true(existsSync(join(run, 'checkpoint-8', 'optimizer.safetensors')));
  t.true(existsSync(join(run, 'checkpoint-8', 'vocab.txt')), 'tokenizer files travel with the checkpoint');
  // a checkpoint is a Hugging Face model folder
  const ck = loadCheckpoint(join(run, 'checkpoint-8'));
  t.is(ck.config.hiddenSize, 32);
  t.true(ck.tensors.has('cls.drp.weight'));
  // resume to 12 steps: continues from step 8
  const r2 = await pretrain(base(run, { resume: true }), quiet);
  t.is(r2.steps, 12);
  const e = r2.finalEval!;
  t.true(e.mlm_tokens > 0 && e.sequences > 0);
  t.true(e.mlm_accuracy >= 0 && e.mlm_accuracy <= 1);
  t.is(e.drp_confusion.flat().reduce((a, b) => a + b, 0), e.sequences);
  t.deepEqual(losses(run).map(([s]) => s), Array.from({ length: 12 }, (_, i) => i + 1));
  const state = JSON.parse(readFileSync(join(run, 'checkpoint-12', 'trainer_state.json'), 'utf8')) as { step: number; eval_history: unknown[] };
  t.is(state.step, 12);
  t.true(state.eval_history.length >= 2);
  // the report renders from the run folder
  const html = readFileSync(writeReport(run), 'utf8');
  t.true(html.includes('<svg') && html.includes('DRP accuracy') && !/https?:\/\/(?!www\.w3)/.test(html));
});

test.serial('exact resume: SIGKILL mid-run, then --resume, gives bit-identical losses', async (t) => {
  await setup();
  const ref = join(root, 'ref');
  await pretrain(base(ref, { maxSteps: 12 }), quiet);
  const want = losses(ref);
  t.is(want.length, 12);

  const run = join(root, 'killed');
  const a = runCli(cliArgs(run, 12));
  const sawCheckpoint = await waitFor(() => existsSync(join(run, 'checkpoint-4', 'trainer_state.json')), 30000);
  a.child.kill('SIGKILL');
  const ra = await a.done;
  t.true(sawCheckpoint, `no checkpoint-4 before the kill: ${ra.stderr}`);
  t.true(ra.signal === 'SIGKILL' || ra.code === 0);
  const b = runCli(cliArgs(run, 12, ['--resume']));
  const rb = await b.done;
  t.is(rb.code, 0, rb.stderr);
  t.true(/resumed from .*checkpoint-\d+/.test(rb.stderr), rb.stderr);
  const got = losses(run);
  t.deepEqual(got.map(([s]) => s), want.map(([s]) => s));
  for (let i = 0; i < want.length; i++) t.is(got[i]![1], want[i]![1], `step ${want[i]![0]}: loss differs after resume`);
  // evaluations are neither lost nor repeated by the resume
  const evalSteps = (r: string) => readFileSync(join(r, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; split?: string; loss: number }).filter((e) => e.split === 'valid').map((e) => [e.step, e.loss]);
  t.deepEqual(evalSteps(run), evalSteps(ref));
});

test.serial('SIGINT finishes the step, saves a checkpoint and exits 0', async (t) => {
  await setup();
  const run = join(root, 'sigint');
  // the tiny preset, whose steps are slower than the loader worker: with batches queued, the signal used to
  // wait about 2000 steps (Node's message-drain limit); no evaluations, so only plain steps run
  const a = runCli(cliArgs(run, 100000, ['--save-every', '0', '--eval-every', '0', '--config', 'tiny', '--batch-size', '8']));
  const logged = () => (existsSync(join(run, 'metrics.jsonl')) ? losses(run).at(-1)?.[0] ?? 0 : 0);
  const started = await waitFor(() => logged() >= 5, 30000);
  t.true(started);
  const atKill = logged();
  a.child.kill('SIGINT');
  const r = await a.done;
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /SIGINT/);
  const cks = listCheckpoints(run);
  t.is(cks.length, 1);
  const state = JSON.parse(readFileSync(join(cks[0]!.dir, 'trainer_state.json'), 'utf8')) as { step: number };
  t.is(state.step, cks[0]!.step);
  t.is(losses(run).at(-1)![0], state.step, 'the checkpoint is at the step it stopped');
  t.true(state.step >= atKill && state.step <= atKill + 50, `stopped at step ${state.step}, SIGINT sent after step ${atKill}`);
});

test.serial('the last checkpoint is written once, after the final eval; a run of no steps writes none', async (t) => {
  await setup();
  const run = join(root, 'once');
  const out: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => out.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    await pretrain(base(run, { maxSteps: 6, saveEvery: 3, evalEvery: 3, progress: true }), quiet);
  } finally {
    process.stderr.write = write;
  }
  const saved = out.join('').split('\n').filter((l) => l.startsWith('saved ')).map((l) => l.replace(/^.*checkpoint-/, ''));
  t.deepEqual(saved, ['3', '6']);
  const state = JSON.parse(readFileSync(join(run, 'checkpoint-6', 'trainer_state.json'), 'utf8')) as { eval_history: { step: number }[] };
  t.deepEqual(state.eval_history.map((e) => e.step), [3, 6], 'the final eval is in the one write of the last checkpoint');
  const none = join(root, 'none');
  const r = await pretrain(base(none, { maxSteps: 0 }), quiet);
  t.truthy(r.finalEval);
  t.deepEqual(listCheckpoints(none), []);
});

test.serial('a corrupt checkpoint gives a clear error naming the file', async (t) => {
  await setup();
  const run = join(root, 'corrupt');
  await pretrain(base(run, { maxSteps: 4 }), quiet);
  const bad = join(root, 'corrupt-copy');
  cpSync(join(run, 'checkpoint-4'), bad, { recursive: true });
  truncateSync(join(bad, 'model.safetensors'), 40);
  const e1 = await t.throwsAsync(pretrain(base(run, { resumeFrom: bad, maxSteps: 6 }), quiet));
  t.regex(e1!.message, /model\.safetensors/);
  rmSync(join(bad, 'trainer_state.json'));
  const e2 = await t.throwsAsync(pretrain(base(run, { resumeFrom: bad, maxSteps: 6 }), quiet));
  t.regex(e2!.message, /trainer_state\.json/);
  // and through the CLI: a clear message, exit code 1, no stack dump
  const c = runCli(cliArgs(run, 6, ['--resume-from', bad]));
  const rc = await c.done;
  t.is(rc.code, 1);
  t.regex(rc.stderr, /linkbert: .*trainer_state\.json/);
});

test.serial('bf16 mixed precision trains on CPU: finite losses that fall as fp32 losses do, fp32 masters in the checkpoint', async (t) => {
  await setup();
  const steps = 40;
  const cfg = { maxSteps: steps, evalEvery: 1000, saveEvery: 1000, warmupSteps: 4 };
  const r32 = await pretrain(base(join(root, 'fp32'), cfg), quiet);
  const r16 = await pretrain(base(join(root, 'bf16'), { ...cfg, precision: 'bf16' }), quiet);
  t.is(r16.steps, steps);
  const l32 = losses(join(root, 'fp32')).map(([, l]) => l!), l16 = losses(join(root, 'bf16')).map(([, l]) => l!);
  t.true(l16.every(Number.isFinite), `bf16 losses: ${l16.join(' ')}`);
  t.notDeepEqual(l16, l32, 'the bf16 run rounds its activations (its losses are not the fp32 ones)');
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const [first16, last16, first32, last32] = [mean(l16.slice(0, 5)), mean(l16.slice(-5)), mean(l32.slice(0, 5)), mean(l32.slice(-5))];
  t.log(`loss, mean of the first and last 5 steps: fp32 ${first32.toFixed(3)} -> ${last32.toFixed(3)}, bf16 ${first16.toFixed(3)} -> ${last16.toFixed(3)}`);
  t.log(`final eval loss: fp32 ${r32.finalEval!.loss.toFixed(4)}, bf16 ${r16.finalEval!.loss.toFixed(4)}`);
  t.true(first32 - last32 > 0.2, 'fp32 training lowers the loss');
  t.true(Math.abs(last16 - last32) < 0.2 * (first32 - last32), 'bf16 lowers it about as far');
  t.true(Math.abs(r16.finalEval!.loss - r32.finalEval!.loss) < 0.05 * r32.finalEval!.loss, 'and evaluates about the same');
  // the checkpoint holds the fp32 master weights (not their bf16 copies)
  const ck = loadCheckpoint(join(root, 'bf16', `checkpoint-${steps}`));
  const w = ck.tensors.get('bert.encoder.layer.0.attention.self.query.weight')!;
  t.is(w.dtype, 'F32');
  t.true(Array.from(w.data as Float32Array).some((x) => (new Uint32Array(new Float32Array([x]).buffer)[0]! & 0xffff) !== 0), 'values with more than bf16 precision');
});

const capture = () => {
  const lines: string[] = [];
  return { lines, log: (l: string) => void lines.push(l), text: () => lines.join('\n') };
};

test.serial('--stop-after-step saves a checkpoint at its step', async (t) => {
  await setup();
  const run = join(root, 'stop-after');
  const r = await pretrain(base(run, { stopAfterStep: 6, saveEvery: 4, evalEvery: 100 }), quiet);
  t.is(r.stoppedBy, 'stop_after_step');
  t.deepEqual(listCheckpoints(run).map((c) => c.step), [4, 6]);
  t.is(r.lastCheckpoint, join(run, 'checkpoint-6'));
  // a stop step that is also a save step saves once
  const c = capture();
  const progress = process.stderr.write;
  const out: string[] = [];
  process.stderr.write = ((chunk: string | Uint8Array) => out.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    await pretrain(base(join(root, 'stop-at-save'), { stopAfterStep: 8, saveEvery: 4, evalEvery: 100, progress: true }), c.log);
  } finally {
    process.stderr.write = progress;
  }
  t.deepEqual(out.join('').split('\n').filter((l) => l.startsWith('saved ')).map((l) => l.replace(/^.*checkpoint-/, '')), ['4', '8']);
});

test.serial('settings are validated up front, naming the flag or the --config-file key', async (t) => {
  await setup();
  const run = join(root, 'invalid');
  const bad: [Partial<PretrainConfig>, RegExp][] = [
    [{ lr: -1 }, /^--lr: expected a positive number, got -1$/],
    [{ lr: Number.NaN }, /^--lr: expected a positive number, got NaN$/],
    [{ warmupRatio: 5 }, /^--warmup-ratio: expected a number in \[0, 1\], got 5$/],
    [{ adamEps: -1 }, /^--adam-eps: /],
    [{ timeBudgetS: -1 }, /^--time-budget: /],
    [{ hiddenDropout: 2 }, /^--hidden-dropout: expected a probability in \[0, 1\), got 2$/],
    [{ threads: 99999 }, /^--threads: expected an integer in \[1, 1024\], got 99999$/],
    [{ batchSize: 'abc' as unknown as number }, /^--batch-size: expected an integer >= 1, got "abc"$/],
  ];
  for (const [extra, want] of bad) {
    const e = await t.throwsAsync(pretrain(base(run, extra), quiet));
    t.regex(e!.message, want);
  }
  t.false(existsSync(run), 'nothing is written before the settings are checked');

  // through the CLI's resolution: flags, and --config-file values (type-checked, named by file and key)
  const resolveArgs = async (args: string[]) => {
    const program = new Command().exitOverride();
    register(program);
    const cmd = program.commands.find((c) => c.name() === 'pretrain')!;
    const notes = capture();
    let cfg: PretrainConfig | undefined;
    cmd.action((opts: Record<string, unknown>) => void (cfg = resolvePretrainConfig(opts, cmd, notes.log)));
    await program.parseAsync(['pretrain', '--data', data, '--out', run, ...args], { from: 'user' });
    return { cfg: cfg!, notes: notes.text() };
  };
  await t.throwsAsync(resolveArgs(['--lr', '-1']), { message: '--lr: expected a positive number, got -1' });
  await t.throwsAsync(resolveArgs(['--adam-eps', '-1']), { message: '--adam-eps: expected a positive number, got -1' });
  const file = join(root, 'run.json');
  writeFileSync(file, JSON.stringify({ batchSize: 'abc' }));
  await t.throwsAsync(resolveArgs(['--config-file', file]), { message: `--config-file ${file}: "batchSize": expected an integer >= 1, got "abc"` });
  writeFileSync(file, JSON.stringify({ lr: 'abc' }));
  await t.throwsAsync(resolveArgs(['--config-file', file]), { message: `--config-file ${file}: "lr": expected a positive number, got "abc"` });
  t.is((await resolveArgs(['--config-file', file, '--lr', '0.001'])).cfg.lr, 0.001, 'a flag overrides the bad file value');
  // a previous RUN/config.json: its run control is not carried over
  writeFileSync(file, JSON.stringify({ train: { ...PRETRAIN_DEFAULTS, lr: 0.002, resume: true, resumeFrom: '/x/checkpoint-4', stopAfterStep: 0, data, out: run, params: 1 } }));
  const r = await resolveArgs(['--config-file', file]);
  t.is(r.cfg.lr, 0.002);
  t.false(r.cfg.resume);
  t.is(r.cfg.resumeFrom, null);
  t.regex(r.notes, /ignoring "resume": true/);
  t.regex(r.notes, /ignoring "resumeFrom": "\/x\/checkpoint-4"/);
  t.notRegex(r.notes, /stopAfterStep/, 'a default value needs no note');
  t.true((await resolveArgs(['--config-file', file, '--resume'])).cfg.resume);
});

test.serial('pretrain --help shows each default once and no null defaults', async (t) => {
  const c = runCli(['pretrain', '--help']);
  const out: string[] = [];
  c.child.stdout!.on('data', (d) => out.push(String(d)));
  t.is((await c.done).code, 0);
  const help = out.join('').replace(/\s+/g, ' ');
  t.notRegex(help, /default: null/);
  t.regex(help, /--threads <value> CPU threads \(default: all cores\) --/);
  t.regex(help, /--lr <value> peak learning rate \(default: 0\.0005\)/);
});

test.serial('a --config whose vocab_size differs from the data is overridden with a note', async (t) => {
  await setup();
  const cfgFile = join(root, 'model-999.json');
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(modelCfg, 'utf8')), vocab_size: 999 }));
  const c = capture();
  const r = await pretrain(base(join(root, 'vocab-note'), { model: cfgFile, maxSteps: 1 }), c.log);
  t.is(r.config.vocabSize, 260);
  t.regex(c.text(), /note: --config .*model-999\.json has vocab_size 999; using the data's vocab size 260/);
  const c2 = capture();
  await pretrain(base(join(root, 'vocab-note-2'), { maxSteps: 1 }), c2.log);
  t.notRegex(c2.text(), /vocab_size/);
});

test.serial('--init-from compares the checkpoint vocab with the data vocab, not only its size', async (t) => {
  await setup();
  const src = join(root, 'init-src');
  await pretrain(base(src, { maxSteps: 4 }), quiet);
  const ck = join(root, 'init-ck');
  cpSync(join(src, 'checkpoint-4'), ck, { recursive: true });
  // the same vocab: accepted
  const ok = await pretrain(base(join(root, 'init-ok'), { initFrom: ck, maxSteps: 1 }), quiet);
  t.is(ok.steps, 1);
  // two tokens swapped: same size, other meaning
  const lines = readFileSync(join(ck, 'vocab.txt'), 'utf8').split('\n');
  [lines[10], lines[11]] = [lines[11]!, lines[10]!];
  writeFileSync(join(ck, 'vocab.txt'), lines.join('\n'));
  const e = await t.throwsAsync(pretrain(base(join(root, 'init-bad'), { initFrom: ck, maxSteps: 1 }), quiet));
  t.true(e!.message.startsWith(`--init-from ${ck}: its vocab ${join(ck, 'vocab.txt')} differs from the data's vocab ${join(data, 'tokenizer', 'vocab.txt')}`), e!.message);
  // no vocab.txt: a note that it could not be checked
  rmSync(join(ck, 'vocab.txt'));
  rmSync(join(ck, 'tokenizer_config.json'), { force: true });
  const c = capture();
  await pretrain(base(join(root, 'init-novocab'), { initFrom: ck, maxSteps: 1 }), c.log);
  t.regex(c.text(), /note: --init-from .* has no vocab\.txt, so its vocab could not be checked/);
});

test.serial('resume drops a torn last metrics line and names a bad earlier one; report tolerates a torn last line', async (t) => {
  await setup();
  const run = join(root, 'torn');
  await pretrain(base(run, { maxSteps: 4 }), quiet);
  const metrics = join(run, 'metrics.jsonl');
  const size = statSync(metrics).size;
  appendFileSync(metrics, '{"step":5,"loss":1.2,"mlm_lo');
  // the report leaves it out with a warning
  const warn = capture();
  writeReport(run, warn.log);
  t.regex(warn.text(), new RegExp(`warning: .*metrics\\.jsonl: left out a partial last line at byte ${size}`));
  // and resume drops it, saying where
  const c = capture();
  const r = await pretrain(base(run, { resume: true, maxSteps: 6 }), c.log);
  t.is(r.steps, 6);
  t.regex(c.text(), new RegExp(`metrics\\.jsonl: dropped a partial last line at byte ${size} \\(28 bytes`));
  t.deepEqual(losses(run).map(([s]) => s), [1, 2, 3, 4, 5, 6]);
  // a malformed line before the last: an error naming file and line, for resume and report alike
  const text = readFileSync(metrics, 'utf8').split('\n');
  text.splice(1, 0, '{"step":2,"loss"');
  writeFileSync(metrics, text.join('\n'));
  const e = await t.throwsAsync(pretrain(base(run, { resume: true, maxSteps: 8 }), quiet));
  t.regex(e!.message, /metrics\.jsonl: line 2: not valid JSON/);
  t.throws(() => writeReport(run, quiet), { message: /metrics\.jsonl: line 2: not valid JSON/ });
});

test.serial('--resume says which incomplete checkpoint folder it skipped; a mismatched position names checkpoint, data and seed', async (t) => {
  await setup();
  const run = join(root, 'skip');
  await pretrain(base(run, { maxSteps: 4 }), quiet);
  mkdirSync(join(run, 'checkpoint-40'));
  cpSync(join(run, 'checkpoint-4'), join(run, 'checkpoint-8'), { recursive: true });
  rmSync(join(run, 'checkpoint-8', 'model.safetensors'));
  const c = capture();
  const r = await pretrain(base(run, { resume: true, maxSteps: 5 }), c.log);
  t.is(r.steps, 5);
  t.regex(c.text(), /resumed from .*checkpoint-4 at step 4/);
  t.regex(c.text(), /--resume: .*checkpoint-8: no model\.safetensors, skipped/);
  t.regex(c.text(), /--resume: .*checkpoint-40: no trainer_state\.json, no config\.json, no model\.safetensors, no optimizer\.safetensors, skipped/);
  const e = await t.throwsAsync(pretrain(base(run, { resumeFrom: join(run, 'checkpoint-4'), seed: 7, maxSteps: 6 }), quiet));
  t.true(e!.message.startsWith(`--resume-from: checkpoint ${join(run, 'checkpoint-4')} does not fit --data ${data} and --seed 7 (loader position does not match`), e!.message);
  t.regex(e!.message, /trainer_state\.json records data ".*", seed 42\), or start a new run from its weights with --init-from/);
});

test.serial('nothing to evaluate (--eval-batches 0 or an empty valid split): no evaluation rows, a note', async (t) => {
  await setup();
  const run = join(root, 'no-eval');
  const c = capture();
  const r = await pretrain(base(run, { evalBatches: 0, maxSteps: 8 }), c.log);
  t.is(r.finalEval, null);
  t.regex(c.text(), /note: --eval-batches 0: no evaluation/);
  const rows = readFileSync(join(run, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { split?: string });
  t.is(rows.filter((x) => x.split === 'valid').length, 0);
  t.is(rows.length, 8);
  const state = JSON.parse(readFileSync(join(run, 'checkpoint-8', 'trainer_state.json'), 'utf8')) as { best_eval_loss: number | null; eval_history: unknown[] };
  t.is(state.best_eval_loss, null);
  t.deepEqual(state.eval_history, []);
  t.regex(readFileSync(writeReport(run, quiet), 'utf8'), /No evaluation yet/);

  const noValid = join(root, 'data-novalid');
  const corpus = join(root, 'corpus-novalid.jsonl');
  syntheticCorpus(corpus, 40, 9);
  await prepare({ inputs: [corpus], vocab, out: noValid, maxSeqLen: 32, seed: 3, workers: 0, validFraction: 0, mask: 'dynamic' });
  const c2 = capture();
  const r2 = await pretrain(base(join(root, 'no-valid'), { data: noValid, maxSteps: 6 }), c2.log);
  t.is(r2.finalEval, null);
  t.regex(c2.text(), /note: the valid split of .* is empty: no evaluation/);
  t.false(readFileSync(join(root, 'no-valid', 'metrics.jsonl'), 'utf8').includes('"valid"'));
});

test.serial('the report shows DRP accuracy per class as a table', async (t) => {
  await setup();
  const run = join(root, 'report-per-class');
  await pretrain(base(run, { maxSteps: 2, evalEvery: 100 }), quiet);
  const html = readFileSync(writeReport(run, quiet), 'utf8');
  t.regex(html, /<table class="per-class"><tr><th>DRP class<\/th><th>accuracy<\/th><th>count<\/th><\/tr><tr><th>contiguous<\/th><td>[\d.]+%<\/td><td>\d+<\/td><\/tr>/);
  t.false(html.includes('&quot;accuracy&quot;'), 'no escaped JSON');
});
