/**
 * Snapshots of long cells: `checkpoint(state)` / `resume<T>()` in 'report:runtime'.
 *
 * A snapshot is one file per (cell, key) in `node_modules/.cache/report/checkpoints/`
 * (outside the results store, ignored by git): `<id>.<key16>.bin`, the state encoded by
 * serialize.ts (typed arrays and tensors bit for bit), replaced atomically at every
 * checkpoint. A run under the same key — after a kill, a timeout, Ctrl-C — reads it back
 * with resume(); a run under another key (the cell or its inputs changed) does not see it.
 * build.ts deletes it once the cell's result is stored; `--verify` gives its re-runs a
 * scratch snapshot file instead, so it neither resumes from nor disturbs a real one.
 *
 * The runner side (fileSnapshots) runs in the cell's child process and uses node:fs
 * directly: it is the cell's own state, not the engine's.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CellJob, Executor } from './child-launcher.ts';
import { decode, encode } from './serialize.ts';

/** Where the snapshot of cell `id` under `key` lives. */
export function checkpointPath(projectRoot: string, id: string, key: string): string {
  return join(projectRoot, 'node_modules', '.cache', 'report', 'checkpoints', `${id}.${key.slice(0, 16)}.bin`);
}

/** The runner's snapshot file: save (atomic replace) and load. */
export function fileSnapshots(path: string): { save(state: unknown): void; load(): unknown } {
  return {
    save(state) {
      const bytes = encode(state);
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, bytes);
      renameSync(tmp, path);
    },
    load() {
      if (!existsSync(path)) return undefined;
      return decode(new Uint8Array(readFileSync(path)));
    },
  };
}

/** An executor that gives each job the snapshot file `where(job)`. */
export function withCheckpoints(executor: Executor, where: (job: CellJob) => string): Executor {
  return { run: (job, hooks) => executor.run({ ...job, checkpointPath: where(job) }, hooks) };
}
