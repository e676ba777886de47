// The `linkbert` CLI: commander wiring. Each command lives in its own file and exports `register(program)`.
import { Command } from 'commander';
import { register as registerInfo } from './info.js';
import { register as registerBench } from './bench.js';
import { register as registerTokenize } from './tokenize.js';
import { register as registerVocab } from './vocab.js';
import { register as registerPrepare } from './prepare.js';
import { register as registerInspect } from './inspect.js';
import { register as registerPretrain } from './pretrain.js';
import { register as registerFillMask } from './fill-mask.js';
import { register as registerFinetune } from './finetune.js';
import { register as registerEvaluate } from './evaluate.js';
import { register as registerReport } from './report.js';
import { register as registerDemo } from './demo.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('linkbert').description('Pretrain, checkpoint, evaluate and fine-tune LinkBERT encoders').version('0.1.0');
  program.showHelpAfterError();
  registerInfo(program);
  registerBench(program);
  registerTokenize(program);
  registerVocab(program);
  registerPrepare(program);
  registerInspect(program);
  registerPretrain(program);
  registerFillMask(program);
  registerFinetune(program);
  registerEvaluate(program);
  registerReport(program);
  registerDemo(program);
  await program.parseAsync(argv);
}
