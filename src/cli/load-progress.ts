/**
 * Feedback while a model's weights load (a 6B file takes tens of seconds): a progress bar on a
 * terminal (cli-progress), a plain line on a pipe or log, and the load time at the end. Written to
 * stderr so stdout keeps only the command's output.
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { LoadProgress } from '../model/load.js';

export interface LoadReporter {
  onProgress(p: LoadProgress): void;
  /** The load finished: stops the bar and prints the time. */
  done(): void;
  /** The load failed: stops the bar, prints nothing more (the error follows). */
  fail(): void;
}

function size(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

export function loadReporter(modelPath: string, stream: NodeJS.WriteStream = process.stderr): LoadReporter {
  const name = path.basename(modelPath);
  const started = performance.now();
  const tty = stream.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  let lineOpen = false;
  let totalBytes = 0;
  const seconds = (): string => ((performance.now() - started) / 1000).toFixed(1);
  return {
    onProgress(p) {
      totalBytes = p.totalBytes;
      if (tty) {
        if (bar === undefined) {
          bar = new cliProgress.SingleBar(
            {
              stream,
              format: `loading ${name} [{bar}] {percentage}% | {loaded}/{tensors} tensors | {size}`,
              hideCursor: true,
              clearOnComplete: true,
              fps: 10,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(1, p.totalBytes), 0, { loaded: 0, tensors: p.total, size: size(p.totalBytes) });
        }
        bar.update(p.bytes, { loaded: p.loaded, tensors: p.total, size: size(p.totalBytes) });
      } else if (!lineOpen) {
        lineOpen = true;
        stream.write(`loading ${name} (${size(p.totalBytes)} of weights)...`);
      }
    },
    done() {
      if (bar !== undefined) {
        bar.stop();
        stream.write(`loaded ${name} (${size(totalBytes)} of weights) in ${seconds()} s\n`);
      } else if (lineOpen) {
        stream.write(` done in ${seconds()} s\n`);
      } else {
        stream.write(`loaded ${name} in ${seconds()} s\n`);
      }
    },
    fail() {
      bar?.stop();
      if (lineOpen) stream.write('\n');
    },
  };
}
