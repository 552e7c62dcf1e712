/**
 * The engine's I/O: disk, clock, stdout and facts about this process and machine (pid,
 * host, whether another process is alive, the environment recorded in results) go through
 * an `Effects` object, so tests run the pipeline with silent or in-memory effects
 * (tests/support/memory-effects.ts).
 *
 * What runs the cells is not here: it is an `Executor` (child-launcher.ts), a required
 * option of the commands that run cells (`BuildOptions.executor`, `VerifyOptions.executor`,
 * `PreviewOptions.executor`), chosen by the CLI (local child processes or Slurm) or by a
 * test (tests/support/fake-executor.ts). `check` and `migrateKeys` run no cell and take none.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { arch, availableParallelism, cpus, hostname, release, tmpdir, type as osType } from 'node:os';
import { dirname } from 'node:path';
import { writeFileAtomic } from './atomic.ts';
import type { RunEnvironment } from './types.ts';

export interface OutputStream {
  write(s: string): void;
  isTTY: boolean;
  /** Terminal width, when known. */
  columns?: number;
}

export interface Effects {
  /** Reads a whole file; rejects with `code: 'ENOENT'` when it does not exist. */
  readFile(path: string): Promise<Uint8Array>;
  /** Writes to a temporary file next to `path`, then renames it over `path` (mkdir -p first). */
  writeFileAtomic(path: string, data: Uint8Array | string): Promise<void>;
  /** File names in a directory; `[]` when the directory does not exist. */
  readdir(path: string): Promise<string[]>;
  /** Removes a file or directory tree; no error when it does not exist. */
  rm(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /**
   * Creates `path` with `data` only if it does not exist (mkdir -p first); false when it
   * already exists. The store lock is made of it.
   */
  createExclusive(path: string, data: string): Promise<boolean>;
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
  /** This process's id and host, as written into lock files and temporary names. */
  pid: number;
  host: string;
  /** True when process `pid` of this host is alive. */
  processAlive(pid: number): boolean;
  /** The system's folder for temporary files. */
  tmpdir: string;
  stdout: OutputStream;
  /**
   * The machine, Node version and git commit results are computed with (recorded in each
   * result's metadata for the provenance appendix). Optional: test effects may leave it out.
   */
  environment?(projectRoot: string): Promise<RunEnvironment>;
  /**
   * The standard output of `git <args>` run in `cwd`; undefined when git is not installed or
   * fails (not a repository, an unknown commit, …). Optional: without it, nothing that needs
   * the project's history can be shown (previous-scheme.ts).
   */
  git?(cwd: string, args: string[]): Promise<string | undefined>;
}

export interface NodeEffectsOptions {
  /** Defaults to `process.stdout`. */
  stdout?: OutputStream;
}

/** Effects backed by the real file system, clock, stdout, process and machine. */
export function nodeEffects(options: NodeEffectsOptions = {}): Effects {
  return {
    async readFile(path) {
      return new Uint8Array(await readFile(path));
    },
    writeFileAtomic,
    async readdir(path) {
      try {
        return await readdir(path);
      } catch (error) {
        if (isNotFound(error)) return [];
        throw error;
      }
    },
    async rm(path) {
      heldFiles.delete(path);
      await rm(path, { recursive: true, force: true });
    },
    async exists(path) {
      try {
        await stat(path);
        return true;
      } catch {
        return false;
      }
    },
    async createExclusive(path, data) {
      await mkdir(dirname(path), { recursive: true });
      try {
        await writeFile(path, data, { flag: 'wx' });
        heldFiles.add(path);
        removeHeldAtExit();
        return true;
      } catch (error) {
        if ((error as { code?: unknown }).code === 'EEXIST') return false;
        throw error;
      }
    },
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolvePromise) => setTimeout(resolvePromise, ms)),
    pid: process.pid,
    host: hostname(),
    processAlive(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        return (error as { code?: unknown }).code === 'EPERM';
      }
    },
    tmpdir: tmpdir(),
    stdout: options.stdout ?? process.stdout,
    environment: nodeEnvironment,
    git: runGit,
  };
}

/** `git <args>` in `cwd`: its standard output, or undefined when it cannot run or fails. */
function runGit(cwd: string, args: string[]): Promise<string | undefined> {
  return new Promise((done) => {
    // A package-lock.json is hundreds of kilobytes: room for a large one.
    execFile('git', args, { cwd, timeout: 30_000, maxBuffer: 256 * 1024 * 1024 }, (error, stdout) => done(error ? undefined : stdout));
  });
}

/** This machine (os module) and the project's git commit (`git rev-parse`, `git status`); no git → no commit. */
async function nodeEnvironment(projectRoot: string): Promise<RunEnvironment> {
  const cpu = cpus();
  const environment: RunEnvironment = {
    cpu: (cpu[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    cores: availableParallelism(),
    os: `${osType()} ${release()} ${arch()}`,
    node: process.version,
  };
  const git = (...args: string[]) => runGit(projectRoot, args);
  const commit = (await git('rev-parse', 'HEAD'))?.trim();
  if (commit && /^[0-9a-f]{40}$/.test(commit)) {
    const status = await git('status', '--porcelain', '--untracked-files=no');
    environment.git = { commit, dirty: status === undefined || status.trim() !== '' };
  }
  return environment;
}

/**
 * Files this process created exclusively (locks) and has not removed: removed when the
 * process exits normally (Ctrl-C exits normally too), so no lock outlives its build.
 */
const heldFiles = new Set<string>();
let removingAtExit = false;
function removeHeldAtExit(): void {
  if (removingAtExit) return;
  removingAtExit = true;
  process.once('exit', () => {
    for (const file of heldFiles) rmSync(file, { force: true });
  });
}

export function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ENOENT';
}
