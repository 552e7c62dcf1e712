/**
 * Everything the engine does to the outside world (disk, clock, stdout, child processes)
 * goes through an `Effects` object, so tests run the pipeline with silent or in-memory
 * effects and a fake executor (both in tests/support/).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { childProcessExecutor, type Executor } from './child-launcher.ts';

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
  /** Milliseconds since the epoch. */
  now(): number;
  stdout: OutputStream;
  executor: Executor;
}

export interface NodeEffectsOptions {
  /** Defaults to `childProcessExecutor({})`. */
  executor?: Executor;
  /** Defaults to `process.stdout`. */
  stdout?: OutputStream;
}

/** Effects backed by the real file system, clock, stdout and child processes. */
export function nodeEffects(options: NodeEffectsOptions = {}): Effects {
  return {
    async readFile(path) {
      return new Uint8Array(await readFile(path));
    },
    async writeFileAtomic(path, data) {
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        await writeFile(tmp, data);
        await rename(tmp, path);
      } catch (error) {
        await rm(tmp, { force: true });
        throw error;
      }
    },
    async readdir(path) {
      try {
        return await readdir(path);
      } catch (error) {
        if (isNotFound(error)) return [];
        throw error;
      }
    },
    async rm(path) {
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
    now: () => Date.now(),
    stdout: options.stdout ?? process.stdout,
    executor: options.executor ?? childProcessExecutor({}),
  };
}

export function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ENOENT';
}
