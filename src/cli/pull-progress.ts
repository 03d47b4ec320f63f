/**
 * What `pull` shows while it downloads, on stderr: on a terminal, cli-progress bars (one for the
 * whole pull with bytes, rate and ETA, one per file in flight); otherwise plain lines (the plan,
 * each finished file, and the totals every few seconds) that read well in a log.
 */
import cliProgress from 'cli-progress';
import type { PullEvent } from '../hub/pull.js';

export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

function humanTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m ${t % 60}s`;
  return `${Math.floor(t / 3600)}h ${Math.floor((t % 3600) / 60)}m`;
}

/** Bytes per second over the last ~10 s. */
class Rate {
  private samples: { t: number; bytes: number }[] = [];
  add(total: number): void {
    const t = Date.now();
    this.samples.push({ t, bytes: total });
    while (this.samples.length > 2 && t - this.samples[0]!.t > 10_000) this.samples.shift();
  }
  perSecond(): number {
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    if (a === undefined || b === undefined || b.t - a.t < 200) return 0;
    return ((b.bytes - a.bytes) * 1000) / (b.t - a.t);
  }
}

export interface PullProgress {
  onEvent: (e: PullEvent) => void;
  /** Stops drawing (call before printing anything else). */
  stop: () => void;
}

function shortName(file: string): string {
  return file.length <= 32 ? file : `…${file.slice(-31)}`;
}

const FILE_FORMAT = '{bar} {percentage}% {done}/{size} {name}';

export function pullProgress(stream: NodeJS.WriteStream = process.stderr): PullProgress {
  return stream.isTTY === true ? barProgress(stream) : lineProgress(stream);
}

/** Not a terminal (a log file, CI): a line per file and a progress line every 5 s. */
function lineProgress(stream: NodeJS.WriteStream): PullProgress {
  let total = 0;
  let done = 0;
  const rate = new Rate();
  let lastLine = Date.now();
  let files = 0;
  let finished = 0;
  return {
    onEvent(e) {
      if (e.type === 'plan') {
        ({ total, files } = toDownload(e.files));
        stream.write(
          `pull: ${e.repo}@${e.revision} (commit ${e.commit.slice(0, 12)}): ${e.files.length} files, ${files} to download (${humanBytes(total)})\n`,
        );
      } else if (e.type === 'start') {
        done += e.resumedFrom;
        if (e.resumedFrom > 0) stream.write(`pull: ${e.file}: resuming at ${humanBytes(e.resumedFrom)}\n`);
      } else if (e.type === 'bytes') {
        done += e.bytes;
        rate.add(done);
        if (Date.now() - lastLine >= 5000) {
          lastLine = Date.now();
          const r = rate.perSecond();
          stream.write(
            `pull: ${humanBytes(done)} of ${humanBytes(total)} (${total > 0 ? ((100 * done) / total).toFixed(1) : '?'}%), ${humanBytes(r)}/s, ETA ${humanTime(r > 0 ? (total - done) / r : Infinity)}\n`,
          );
        }
      } else {
        finished++;
        stream.write(`pull: [${finished}/${files}] ${e.file} done\n`);
      }
    },
    stop() {},
  };
}

/** A terminal: one bar for the whole pull and one per file being downloaded. */
function barProgress(stream: NodeJS.WriteStream): PullProgress {
  let total = 0;
  let done = 0;
  const rate = new Rate();
  const started = Date.now();
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: '{bar} {percentage}% {done}/{size} {speed} ETA {eta_h} {name}',
      barsize: 20,
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
      fps: 8,
    },
    cliProgress.Presets.shades_classic,
  );
  let overall: cliProgress.SingleBar | undefined;
  const bars = new Map<string, { bar: cliProgress.SingleBar; value: number; total: number }>();
  const payload = (value: number, size: number, name: string, speed: string, eta: string): Record<string, string> => ({
    done: humanBytes(value).padStart(9),
    size: humanBytes(size).padStart(9),
    name,
    speed,
    eta_h: eta,
  });
  const refreshOverall = (name: string): void => {
    const r = rate.perSecond();
    overall?.update(done, payload(done, total, name, `${humanBytes(r)}/s`.padStart(10), humanTime(r > 0 ? (total - done) / r : Infinity).padStart(7)));
  };
  let files = 0;
  let finished = 0;
  return {
    onEvent(e) {
      if (e.type === 'plan') {
        ({ total, files } = toDownload(e.files));
        stream.write(`pull: ${e.repo}@${e.revision} (commit ${e.commit.slice(0, 12)}): ${e.files.length} files, ${files} to download\n`);
        overall = multi.create(Math.max(total, 1), 0, payload(0, total, `0/${files} files`, '', ''));
      } else if (e.type === 'start') {
        done += e.resumedFrom;
        const t = e.total ?? 0;
        const bar = multi.create(Math.max(t, 1), e.resumedFrom, payload(e.resumedFrom, t, shortName(e.file), '', ''), { format: FILE_FORMAT });
        bars.set(e.file, { bar, value: e.resumedFrom, total: t });
        refreshOverall(`${finished}/${files} files`);
      } else if (e.type === 'bytes') {
        done += e.bytes;
        rate.add(done);
        const b = bars.get(e.file);
        if (b !== undefined) {
          b.value += e.bytes;
          b.bar.update(b.value, payload(b.value, b.total, shortName(e.file), '', ''));
        }
        refreshOverall(`${finished}/${files} files`);
      } else {
        finished++;
        const b = bars.get(e.file);
        if (b !== undefined) {
          multi.remove(b.bar);
          bars.delete(e.file);
        }
        refreshOverall(`${finished}/${files} files, ${humanTime((Date.now() - started) / 1000)}`);
      }
    },
    stop() {
      multi.stop();
    },
  };
}

/** The files of a plan still to fetch: how many, and their bytes (sizes the hub did not give count 0). */
function toDownload(files: readonly { present: boolean; size?: number | undefined }[]): { files: number; total: number } {
  const todo = files.filter((f) => !f.present);
  return { files: todo.length, total: todo.reduce((s, f) => s + (f.size ?? 0), 0) };
}
