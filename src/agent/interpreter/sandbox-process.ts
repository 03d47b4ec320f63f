/**
 * One running sandbox: the bwrap process with runner.py inside and its JSON-lines protocol on fd 3.
 * The cells' output travels inside the replies; the process's own stderr only carries bwrap's and
 * Python's start-up errors, kept for the error message.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { ChatGLMError } from '../../errors.js';
import type { CodeRunError } from '../interpreter-types.js';
import { PROTOCOL_FD, RUNNER_SOURCE_FD, SANDBOX_INSTALL_HINT, type SandboxCommand } from './sandbox-command.js';

export interface RunnerResultMessage {
  type: 'result';
  id: number;
  text: string;
  truncated: boolean;
  error: CodeRunError | null;
  images: string[];
  timedOut: boolean;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A result line carries the figures as base64; far above any real one. */
const MAX_LINE_CHARS = 256 * 1024 * 1024;

function isCodeRunError(value: unknown): value is CodeRunError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === 'string' && typeof v.message === 'string' && typeof v.traceback === 'string';
}

/** Checks the shape of a result line; anything else on fd 3 is ignored. */
function parseResult(value: Record<string, unknown>): RunnerResultMessage | undefined {
  const { id, text, truncated, error, images, timedOut } = value;
  if (typeof id !== 'number' || typeof text !== 'string' || typeof timedOut !== 'boolean') return undefined;
  if (!Array.isArray(images) || !images.every((x) => typeof x === 'string')) return undefined;
  if (error !== null && !isCodeRunError(error)) return undefined;
  return { type: 'result', id, text, truncated: truncated === true, error, images: images as string[], timedOut };
}

export class SandboxProcess {
  private readonly child: ChildProcess;
  private lineBuffer = '';
  private stderrTail = '';
  private exitInfo: ProcessExit | undefined;
  private readonly exitWaiters: Array<(exit: ProcessExit) => void> = [];
  /** Receives each well-formed result line. */
  onResult: ((message: RunnerResultMessage) => void) | undefined;
  /** Called once when the process has ended, for whatever reason. */
  onExit: ((exit: ProcessExit) => void) | undefined;
  private onReady: ((message: Record<string, unknown>) => void) | undefined;
  private onFatal: ((message: string) => void) | undefined;

  private constructor(command: SandboxCommand, runnerSource: string) {
    this.child = spawn(command.file, command.args, {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    // A forgotten interpreter must not keep Node alive; --die-with-parent then ends the sandbox.
    this.child.unref();
    const stdin = this.child.stdin as Writable & { unref?: () => void };
    stdin.on('error', () => {
      // EPIPE after the sandbox died: the exit handler reports it.
    });
    const stdio = this.child.stdio as Array<(Readable | Writable) & { unref?: () => void } | null>;
    const [, stdout, stderr] = stdio;
    const protocol = stdio[PROTOCOL_FD];
    const source = stdio[RUNNER_SOURCE_FD];
    for (const stream of stdio) stream?.unref?.();
    (stdout as Readable).resume();
    (stderr as Readable).setEncoding('utf8');
    (stderr as Readable).on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4096);
    });
    const protocolStream = protocol as Readable;
    protocolStream.setEncoding('utf8');
    protocolStream.on('data', (chunk: string) => this.receive(chunk));
    protocolStream.on('error', () => {});
    const sourceStream = source as Writable;
    sourceStream.on('error', () => {});
    sourceStream.end(runnerSource);
    this.child.on('error', (err) => this.finish({ code: null, signal: null }, err.message));
    this.child.on('exit', (code, signal) => this.finish({ code, signal }));
  }

  /** Starts the sandbox and waits until Python has imported numpy and matplotlib. */
  static async start(command: SandboxCommand, runnerFile: string, startTimeoutMs: number): Promise<SandboxProcess> {
    const proc = new SandboxProcess(command, readFileSync(runnerFile, 'utf8'));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill();
        reject(new ChatGLMError('SANDBOX', `code interpreter: the sandbox did not start within ${startTimeoutMs / 1000} s`));
      }, startTimeoutMs);
      const settle = (error?: ChatGLMError): void => {
        clearTimeout(timer);
        proc.onReady = undefined;
        proc.onFatal = undefined;
        proc.onExit = undefined;
        if (error) reject(error);
        else resolve();
      };
      proc.onReady = () => settle();
      proc.onFatal = (message) => {
        proc.kill();
        settle(new ChatGLMError('SANDBOX', `code interpreter: ${message}`));
      };
      proc.onExit = (exit) => {
        const said = proc.stderrTail.trim().split('\n').slice(-3).join(' / ');
        let hint = SANDBOX_INSTALL_HINT;
        if (/source path/i.test(said)) {
          hint = 'bwrap cannot reach a folder it mounts; when Node runs as root the sandbox runs as uid 65534, so workDir and its parent folders must be reachable by that uid';
        } else if (/namespace|uid map|setting up|Operation not permitted/i.test(said)) {
          hint = 'bubblewrap needs unprivileged user namespaces, which this system restricts (sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces, or an AppArmor policy)';
        }
        settle(new ChatGLMError('SANDBOX', `code interpreter: the sandbox ended at start-up (${describeExit(exit)})${said ? `: ${said}` : ''}; ${hint}`));
      };
      if (proc.exitInfo !== undefined) proc.onExit(proc.exitInfo);
    });
    return proc;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  send(message: object): void {
    if (!this.alive) return;
    this.child.stdin?.write(`${JSON.stringify(message)}\n`);
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  exited(): Promise<ProcessExit> {
    if (this.exitInfo !== undefined) return Promise.resolve(this.exitInfo);
    this.child.ref();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  /** Keeps Node running while a cell is in flight (the process is unref'd when idle). */
  hold(): void {
    this.child.ref();
  }

  release(): void {
    this.child.unref();
  }

  private finish(exit: ProcessExit, spawnError?: string): void {
    if (this.exitInfo !== undefined) return;
    if (spawnError !== undefined) this.stderrTail += `\n${spawnError}`;
    this.exitInfo = exit;
    this.child.unref();
    this.onExit?.(exit);
    for (const waiter of this.exitWaiters.splice(0)) waiter(exit);
  }

  private receive(chunk: string): void {
    this.lineBuffer += chunk;
    // Only a cell writing to fd 3 itself can send an endless line; drop it rather than grow.
    if (this.lineBuffer.length > MAX_LINE_CHARS && !this.lineBuffer.includes('\n')) this.lineBuffer = '';
    let newline;
    while ((newline = this.lineBuffer.indexOf('\n')) >= 0) {
      const line = this.lineBuffer.slice(0, newline);
      this.lineBuffer = this.lineBuffer.slice(newline + 1);
      this.handleLine(line);
    }
  }

  private handleLine(line: string): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    const message = value as Record<string, unknown>;
    if (message.type === 'ready') this.onReady?.(message);
    else if (message.type === 'fatal' && typeof message.message === 'string') this.onFatal?.(message.message);
    else if (message.type === 'result') {
      const result = parseResult(message);
      if (result !== undefined) this.onResult?.(result);
    }
  }
}

export function describeExit(exit: ProcessExit): string {
  if (exit.signal !== null) return `signal ${exit.signal}`;
  if (exit.code !== null) return `exit code ${exit.code}`;
  return 'could not be started';
}
