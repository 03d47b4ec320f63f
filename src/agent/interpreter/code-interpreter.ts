/**
 * createCodeInterpreter: a persistent, sandboxed Python for ChatGLM3's code-interpreter mode.
 *
 * Cells run one at a time in one Python process, so variables persist. A cell that runs too long is
 * stopped in three steps: an alarm inside Python raises TimeoutError in the cell (state kept); if
 * the cell swallows that, an interrupt one second later raises it again (state kept); if that is
 * ignored too (a signal handler replaced, a long C call), the sandbox is killed a second after and
 * started afresh, and the result says `restarted: true`.
 */
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChatGLMError } from '../../errors.js';
import type { CodeInterpreterLike, CodeRunImage, CodeRunResult } from '../interpreter-types.js';
import {
  buildSandboxCommand,
  findSandboxTools,
  isRoot,
  runnerScriptPath,
  SANDBOX_UID,
  type SandboxCommand,
  type SandboxLimits,
} from './sandbox-command.js';
import { describeExit, SandboxProcess, type RunnerResultMessage } from './sandbox-process.js';

export interface CodeInterpreterOptions {
  /**
   * The host folder the code sees as /mnt/data, its only writable place that outlives a restart.
   * Default: a new temporary folder, removed by close(). When Node runs as root the sandbox runs as
   * uid 65534 and this folder is chowned to it.
   */
  workDir?: string;
  /** Time limit of one cell, ms. Default 30,000 (the original demo's). */
  timeoutMs?: number;
  /** Address-space limit of the Python process, MiB (at least 512: numpy and matplotlib need it). Default 2,048; a bigger allocation raises MemoryError. */
  memoryMb?: number;
  /** Processes and threads the sandbox may hold at once. Default 64; a fork bomb stops there. */
  maxProcesses?: number;
  /** Largest file the code may write, MiB. Default 100. */
  maxFileMb?: number;
  /** Characters of output a cell keeps for the caller; more is cut with a notice. Default 1,000,000. */
  maxOutputChars?: number;
}

export interface CodeInterpreter extends CodeInterpreterLike {
  /** The host folder mounted at /mnt/data. */
  readonly workDir: string;
  run(code: string, options?: { signal?: AbortSignal }): Promise<CodeRunResult>;
  /** A fresh Python: variables are gone, files in workDir stay. Waits for a running cell to end. */
  reset(): Promise<void>;
  /** Ends the sandbox (and removes workDir if the interpreter created it). Further runs fail. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MEMORY_MB = 2048;
const DEFAULT_MAX_PROCESSES = 64;
const DEFAULT_MAX_FILE_MB = 100;
const DEFAULT_MAX_OUTPUT_CHARS = 1_000_000;
const TMP_BYTES = 256 * 1024 * 1024;
/** Between the alarm and the interrupt, and between the interrupt and the kill. */
const ESCALATION_MS = 1000;
/** Python plus numpy and matplotlib imports; generous for a loaded machine. */
const START_TIMEOUT_MS = 60_000;

function positiveOption(value: number | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) {
    throw new ChatGLMError('BAD_ARGUMENT', `createCodeInterpreter: ${name} must be a number >= ${min} (got ${value})`);
  }
  return value;
}

function abortError(): ChatGLMError {
  return new ChatGLMError('ABORTED', 'the code run was aborted');
}

function restartedResult(text: string, name: string, message: string, timedOut: boolean): CodeRunResult {
  return {
    text,
    error: { name, message, traceback: `${name}: ${message}\n` },
    images: [],
    timedOut,
    restarted: true,
  };
}

class SandboxedInterpreter implements CodeInterpreter {
  readonly workDir: string;
  private proc: SandboxProcess;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private closed = false;
  /** The process ended between cells; the next result must say so. */
  private lostWhileIdle = false;

  constructor(
    proc: SandboxProcess,
    workDir: string,
    private readonly ownsWorkDir: boolean,
    private readonly command: SandboxCommand,
    private readonly runnerFile: string,
    private readonly timeoutMs: number,
  ) {
    this.proc = proc;
    this.workDir = workDir;
    this.watch(proc);
  }

  run(code: string, options: { signal?: AbortSignal } = {}): Promise<CodeRunResult> {
    if (typeof code !== 'string') {
      return Promise.reject(new ChatGLMError('BAD_ARGUMENT', 'code interpreter: run(code) needs the code as a string'));
    }
    const { signal } = options;
    const job = this.enqueue(() => this.execute(code, signal));
    if (signal === undefined) return job;
    // An abort answers at once; the queue still waits for the sandbox to be back in a known state.
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(abortError());
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      job.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  reset(): Promise<void> {
    return this.enqueue(async () => {
      this.ensureOpen();
      await this.restart();
      this.lostWhileIdle = false;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.proc.kill();
    await this.proc.exited();
    await this.queue.catch(() => {});
    if (this.ownsWorkDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const job = this.queue.then(task);
    this.queue = job.catch(() => {});
    return job;
  }

  private ensureOpen(): void {
    if (this.closed) throw new ChatGLMError('SANDBOX', 'code interpreter: it was closed; create a new one with createCodeInterpreter()');
  }

  private watch(proc: SandboxProcess): void {
    proc.onExit = () => {
      if (proc === this.proc) this.lostWhileIdle = true;
    };
  }

  private async restart(): Promise<void> {
    this.proc.kill();
    await this.proc.exited();
    this.ensureOpen();
    const proc = await SandboxProcess.start(this.command, this.runnerFile, START_TIMEOUT_MS);
    if (this.closed) {
      proc.kill();
      this.ensureOpen();
    }
    this.proc = proc;
    this.watch(proc);
  }

  private async execute(code: string, signal: AbortSignal | undefined): Promise<CodeRunResult> {
    this.ensureOpen();
    if (signal?.aborted) throw abortError();
    let restarted = false;
    if (!this.proc.alive || this.lostWhileIdle) {
      await this.restart();
      restarted = true;
      this.lostWhileIdle = false;
    }
    const proc = this.proc;
    const id = this.nextId++;
    const outcome = await new Promise<RunnerResultMessage | { exit: string; killed: boolean; aborted: boolean }>((resolve) => {
      let killed = false;
      let aborted = false;
      const timers: NodeJS.Timeout[] = [];
      const done = (value: RunnerResultMessage | { exit: string; killed: boolean; aborted: boolean }): void => {
        for (const timer of timers) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        proc.onResult = undefined;
        proc.release();
        this.watch(proc);
        resolve(value);
      };
      const escalate = (reason: 'timeout' | 'abort', interruptAfterMs: number): void => {
        timers.push(setTimeout(() => proc.send({ type: 'interrupt', id, reason }), interruptAfterMs));
        timers.push(setTimeout(() => {
          killed = true;
          proc.kill();
        }, interruptAfterMs + ESCALATION_MS));
      };
      const onAbort = (): void => {
        aborted = true;
        for (const timer of timers.splice(0)) clearTimeout(timer);
        escalate('abort', 0);
      };
      proc.onResult = (message) => {
        if (message.id === id) done(message);
      };
      proc.onExit = (exit) => done({ exit: describeExit(exit), killed, aborted });
      signal?.addEventListener('abort', onAbort, { once: true });
      proc.hold();
      escalate('timeout', this.timeoutMs + ESCALATION_MS);
      proc.send({ type: 'run', id, code, timeout: this.timeoutMs / 1000 });
    });
    if ('exit' in outcome) {
      this.ensureOpen();
      await this.restart();
      this.lostWhileIdle = false;
      if (outcome.aborted) throw abortError();
      if (outcome.killed) {
        return restartedResult('', 'TimeoutError',
          `the cell ran past its time limit of ${this.timeoutMs / 1000} s and did not stop; the interpreter was restarted and its variables are lost`, true);
      }
      return restartedResult('', 'InterpreterExit',
        `the Python process ended during the cell (${outcome.exit}); the interpreter was restarted and its variables are lost`, false);
    }
    if (signal?.aborted) throw abortError();
    let text = outcome.text;
    if (outcome.truncated) text += '\n[output cut: the cell printed more than the interpreter keeps]\n';
    const images: CodeRunImage[] = outcome.images.map((b64) => ({ mime: 'image/png', data: new Uint8Array(Buffer.from(b64, 'base64')) }));
    const result: CodeRunResult = { text, images, timedOut: outcome.timedOut, restarted };
    if (outcome.error !== null) result.error = outcome.error;
    return result;
  }
}

function prepareWorkDir(requested: string | undefined): { dir: string; owned: boolean } {
  let dir: string;
  let owned = false;
  if (requested === undefined) {
    dir = mkdtempSync(path.join(tmpdir(), 'chatglm-interpreter-'));
    owned = true;
  } else {
    dir = path.resolve(requested);
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new ChatGLMError('BAD_ARGUMENT', `code interpreter: workDir ${dir} is not an existing directory; create it first`);
  }
  if (isRoot()) chownSync(dir, SANDBOX_UID, SANDBOX_UID);
  return { dir, owned };
}

/**
 * Starts a sandboxed Python (bubblewrap, Debian's python3 with numpy and matplotlib) and waits until
 * it is ready. Fails with ChatGLMError 'SANDBOX', naming the Debian packages, when the sandbox cannot
 * exist here; it never runs code outside it.
 */
export async function createCodeInterpreter(options: CodeInterpreterOptions = {}): Promise<CodeInterpreter> {
  const timeoutMs = positiveOption(options.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS, 1);
  const limits: SandboxLimits = {
    memoryBytes: Math.floor(positiveOption(options.memoryMb, 'memoryMb', DEFAULT_MEMORY_MB, 512) * 1024 * 1024),
    maxProcesses: Math.floor(positiveOption(options.maxProcesses, 'maxProcesses', DEFAULT_MAX_PROCESSES, 4)),
    maxFileBytes: Math.floor(positiveOption(options.maxFileMb, 'maxFileMb', DEFAULT_MAX_FILE_MB, 1) * 1024 * 1024),
    tmpBytes: TMP_BYTES,
    maxOutputChars: Math.floor(positiveOption(options.maxOutputChars, 'maxOutputChars', DEFAULT_MAX_OUTPUT_CHARS, 1)),
  };
  const tools = await findSandboxTools();
  const runnerFile = runnerScriptPath();
  const { dir, owned } = prepareWorkDir(options.workDir);
  const command = buildSandboxCommand(tools, dir, limits);
  try {
    const proc = await SandboxProcess.start(command, runnerFile, START_TIMEOUT_MS);
    return new SandboxedInterpreter(proc, dir, owned, command, runnerFile, timeoutMs);
  } catch (err) {
    if (owned) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
