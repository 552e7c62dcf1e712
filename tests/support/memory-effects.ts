/** Test double of the effects: a file map, a settable clock, recorded stdout. */
import { resolve } from 'node:path';
import type { Effects } from '../../src/engine/effects.ts';

/** In-memory effects for tests: a file map, a settable clock, recorded stdout. */
export interface MemoryEffects extends Effects {
  files: Map<string, Uint8Array>;
  /** Everything written to stdout, in order. */
  written: string[];
  /** The clock `now()` returns; tests advance it. */
  clock: { ms: number };
}

export function memoryEffects(options: { isTTY?: boolean; files?: Record<string, string> } = {}): MemoryEffects {
  const files = new Map<string, Uint8Array>();
  for (const [path, text] of Object.entries(options.files ?? {})) files.set(resolve(path), new TextEncoder().encode(text));
  const written: string[] = [];
  const clock = { ms: Date.UTC(2026, 10, 21) };
  const under = (dir: string) => (path: string) => path.startsWith(resolve(dir) + '/');
  return {
    files,
    written,
    clock,
    async readFile(path) {
      const data = files.get(resolve(path));
      if (data === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return data.slice();
    },
    async writeFileAtomic(path, data) {
      files.set(resolve(path), typeof data === 'string' ? new TextEncoder().encode(data) : data.slice());
    },
    async readdir(path) {
      const names = new Set<string>();
      const prefix = resolve(path) + '/';
      for (const key of files.keys()) {
        if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split('/')[0]!);
      }
      return [...names].sort();
    },
    async rm(path) {
      files.delete(resolve(path));
      for (const key of [...files.keys()].filter(under(path))) files.delete(key);
    },
    async exists(path) {
      return files.has(resolve(path)) || [...files.keys()].some(under(path));
    },
    async createExclusive(path, data) {
      if (files.has(resolve(path))) return false;
      files.set(resolve(path), new TextEncoder().encode(data));
      return true;
    },
    now: () => clock.ms,
    async sleep(ms) {
      clock.ms += ms;
      await Promise.resolve();
    },
    pid: 4242,
    host: 'memory',
    processAlive: (pid) => pid === 4242,
    tmpdir: '/tmp',
    stdout: { write: (s) => void written.push(s), isTTY: options.isTTY ?? false },
  };
}

