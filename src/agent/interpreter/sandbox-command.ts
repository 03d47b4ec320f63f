/**
 * The bubblewrap command line that runs runner.py: which host paths the sandbox sees, as whom, and
 * with which limits. Kept apart from the process handling so the profile can be read in one place.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatGLMError } from '../../errors.js';

export const SANDBOX_PACKAGES = 'bubblewrap python3-numpy python3-matplotlib';
export const SANDBOX_INSTALL_HINT = `install the Debian packages with: apt-get install -y ${SANDBOX_PACKAGES}`;

/** Where the interpreter runs; the system prompt of ChatGLM3's code interpreter names this folder. */
export const SANDBOX_WORK_DIR = '/mnt/data';
const SANDBOX_RUNNER = '/opt/chatglm/runner.py';
export const SANDBOX_PYTHON = '/usr/bin/python3';
/** The uid the code runs as inside the sandbox, and on the host when Node runs as root (nobody). */
export const SANDBOX_UID = 65534;
const SHM_BYTES = 64 * 1024 * 1024;

/** The file descriptors the runner uses besides stdin/stdout/stderr. */
export const PROTOCOL_FD = 3;
export const RUNNER_SOURCE_FD = 4;

export interface SandboxLimits {
  /** Address-space limit of the Python process (RLIMIT_AS), bytes. */
  memoryBytes: number;
  /** Processes and threads inside the sandbox (RLIMIT_NPROC, counted per user namespace). */
  maxProcesses: number;
  /** Largest file the code may write (RLIMIT_FSIZE), bytes. */
  maxFileBytes: number;
  /** Size of the in-memory /tmp, bytes (only where bwrap has --size). */
  tmpBytes: number;
  /** Characters of stdout+stderr a cell keeps; more is cut with a notice. */
  maxOutputChars: number;
}

export interface SandboxTools {
  bwrap: string;
  /** Set when Node runs as root: bwrap is started through it as uid 65534 (see buildSandboxCommand). */
  setpriv?: string;
  /** bwrap options that older releases lack. */
  hasSize: boolean;
  hasDisableUserns: boolean;
}

export interface SandboxCommand {
  file: string;
  args: string[];
}

/** PATH, then the system folders (a service may run with a bare PATH). */
function defaultSearchDirs(): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  return [...dirs, '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
}

export function findExecutable(name: string, dirs: string[] = defaultSearchDirs()): string | undefined {
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function bwrapHelp(bwrap: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(bwrap, ['--help'], { timeout: 10_000 }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
  });
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Finds bwrap and Python, or fails with the packages to install. Never offers a way around the sandbox. */
export async function findSandboxTools(searchDirs: string[] = defaultSearchDirs()): Promise<SandboxTools> {
  const bwrap = findExecutable('bwrap', searchDirs);
  if (bwrap === undefined) {
    throw new ChatGLMError('SANDBOX', `code interpreter: bubblewrap (bwrap) is not installed, and code never runs outside the sandbox; ${SANDBOX_INSTALL_HINT}`);
  }
  if (!existsSync(SANDBOX_PYTHON)) {
    throw new ChatGLMError('SANDBOX', `code interpreter: ${SANDBOX_PYTHON} is missing; ${SANDBOX_INSTALL_HINT}`);
  }
  let setpriv: string | undefined;
  if (isRoot()) {
    setpriv = findExecutable('setpriv', searchDirs);
    if (setpriv === undefined) {
      throw new ChatGLMError('SANDBOX', 'code interpreter: running as root needs setpriv (Debian package util-linux) to start the sandbox as an unprivileged user');
    }
  }
  const help = await bwrapHelp(bwrap);
  const tools: SandboxTools = { bwrap, hasSize: help.includes('--size'), hasDisableUserns: help.includes('--disable-userns') };
  if (setpriv !== undefined) tools.setpriv = setpriv;
  return tools;
}

/** runner.py ships next to this module's source; from dist/ it is found through the package root. */
export function runnerScriptPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.join(here, 'runner.py'),
    path.resolve(here, '../../../../src/agent/interpreter/runner.py'),
  ];
  const found = candidates.find((file) => existsSync(file));
  if (found === undefined) {
    throw new ChatGLMError('SANDBOX', `code interpreter: runner.py is missing from the package (looked in ${candidates.join(', ')}); reinstall chatglm.ts`);
  }
  return found;
}

/**
 * The top-level directories Python's libraries come from: symlinks into /usr on merged-/usr systems
 * (Debian 12), real directories on older ones.
 */
function rootLinks(): string[] {
  const args: string[] = [];
  for (const top of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    let stat;
    try {
      stat = lstatSync(top);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else if (stat.isDirectory()) args.push('--ro-bind', top, top);
  }
  return args;
}

/**
 * The sandbox: every namespace unshared (no network at all, own PID space), a root made of /usr and
 * the few /etc files numpy and matplotlib read, all read-only; an in-memory /tmp; the working
 * directory writable at /mnt/data; uid 65534; killed with its parent. The runner's source comes in
 * on RUNNER_SOURCE_FD so that no host path of this package has to be visible inside.
 *
 * RLIMIT_NPROC is not enforced for processes whose host uid is 0, so when Node runs as root the
 * sandbox is started through setpriv as uid 65534; the working directory must then be writable by
 * that uid (the interpreter hands it over).
 */
export function buildSandboxCommand(tools: SandboxTools, workDir: string, limits: SandboxLimits): SandboxCommand {
  const bwrapArgs = [
    '--unshare-all', '--unshare-user',
    '--die-with-parent', '--new-session', '--clearenv',
    '--hostname', 'sandbox',
    '--ro-bind', '/usr', '/usr',
    ...rootLinks(),
    // numpy finds its BLAS through /etc/alternatives; matplotlib reads /etc/matplotlibrc and fonts.
    '--ro-bind-try', '/etc/alternatives', '/etc/alternatives',
    '--ro-bind-try', '/etc/ld.so.cache', '/etc/ld.so.cache',
    '--ro-bind-try', '/etc/fonts', '/etc/fonts',
    '--ro-bind-try', '/etc/matplotlibrc', '/etc/matplotlibrc',
    '--proc', '/proc',
    '--dev', '/dev',
    // Shared memory for multiprocessing, bounded; without --size there is none rather than unbounded.
    ...(tools.hasSize ? ['--size', String(SHM_BYTES), '--tmpfs', '/dev/shm'] : []),
    ...(tools.hasSize ? ['--size', String(limits.tmpBytes)] : []),
    '--tmpfs', '/tmp',
    '--bind', workDir, SANDBOX_WORK_DIR,
    '--chdir', SANDBOX_WORK_DIR,
    '--ro-bind-data', String(RUNNER_SOURCE_FD), SANDBOX_RUNNER,
    // The root and /dev that bwrap builds are writable, unbounded tmpfs: made read-only, so memory
    // can only fill through the bounded /tmp and /dev/shm.
    '--remount-ro', '/dev',
    '--remount-ro', '/',
    '--uid', String(SANDBOX_UID), '--gid', String(SANDBOX_UID),
    ...(tools.hasDisableUserns ? ['--disable-userns'] : []),
    '--setenv', 'PATH', '/usr/bin:/bin',
    '--setenv', 'HOME', '/tmp',
    '--setenv', 'LANG', 'C.UTF-8',
    '--setenv', 'MPLBACKEND', 'Agg',
    '--setenv', 'MPLCONFIGDIR', '/tmp/matplotlib',
    '--setenv', 'OPENBLAS_NUM_THREADS', '1',
    '--setenv', 'OMP_NUM_THREADS', '1',
    '--',
    SANDBOX_PYTHON, '-I', '-B', '-u', SANDBOX_RUNNER,
    String(limits.memoryBytes), String(limits.maxProcesses), String(limits.maxFileBytes), String(limits.maxOutputChars),
  ];
  if (tools.setpriv !== undefined) {
    return {
      file: tools.setpriv,
      args: [`--reuid=${SANDBOX_UID}`, `--regid=${SANDBOX_UID}`, '--clear-groups', tools.bwrap, ...bwrapArgs],
    };
  }
  return { file: tools.bwrap, args: bwrapArgs };
}
