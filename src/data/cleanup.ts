// Temporary files and folders a command must not leave behind, even when Ctrl-C or a kill ends it (an
// unpacked archive can be gigabytes in /tmp). One handler per signal serves them all: it removes them,
// then lets the signal end the process as it would have, unless another listener (pretrain's loop, which
// saves and exits on its own) is still there. Normal exits and process.exit() run them too.
import process from 'node:process';

const pending = new Set<() => void>();

function runAll(): void {
  for (const fn of [...pending]) {
    pending.delete(fn);
    try {
      fn();
    } catch {
      // best effort: the process is ending, and one failed removal must not keep the others from running
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  runAll();
  uninstall();
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function install(): void {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', runAll);
}

function uninstall(): void {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', runAll);
}

/** Runs fn (synchronously) if the process ends before the returned release() is called. */
export function onAbnormalEnd(fn: () => void): () => void {
  if (pending.size === 0) install();
  pending.add(fn);
  return () => {
    if (pending.delete(fn) && pending.size === 0) uninstall();
  };
}
