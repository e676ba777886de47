// The `linkbert` CLI: commander wiring. Each command lives in its own file and exports `register(program)`.
// Only the invoked command's module is loaded (the others pull in the model, the trainer, the readers:
// about 0.2 s of start-up); help, a bare `linkbert` or an unknown command load them all.
import { Command } from 'commander';

type Registrar = () => Promise<{ register: (program: Command) => void }>;
const COMMANDS: [string, Registrar][] = [
  ['info', () => import('./info.js')],
  ['bench', () => import('./bench.js')],
  ['tokenize', () => import('./tokenize.js')],
  ['vocab', () => import('./vocab.js')],
  ['prepare', () => import('./prepare.js')],
  ['inspect', () => import('./inspect.js')],
  ['pretrain', () => import('./pretrain.js')],
  ['fill-mask', () => import('./fill-mask.js')],
  ['finetune', () => import('./finetune.js')],
  ['evaluate', () => import('./evaluate.js')],
  ['report', () => import('./report.js')],
  ['demo', () => import('./demo.js')],
];

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('linkbert').description('Pretrain, checkpoint, evaluate and fine-tune LinkBERT encoders').version('0.1.0');
  // after a usage error, point at --help rather than print the whole of it below the error
  program.showHelpAfterError('(see linkbert <command> --help)');
  const invoked = COMMANDS.find(([name]) => name === argv[2]);
  for (const [, load] of invoked ? [invoked] : COMMANDS) (await load()).register(program);
  await program.parseAsync(argv);
}
