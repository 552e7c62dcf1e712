/**
 * Test double of a Slurm cluster: wrappers `sbatch`, `squeue`, `scontrol`, `scancel` in a
 * temporary bin folder, all calling fake-slurm.mjs (which really runs the jobs). Put
 * `env.PATH` first on the PATH of whatever runs Slurm's commands.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface FakeJob {
  id: string;
  name: string;
  state: string;
  reason?: string;
  deps: string[];
  options: Record<string, string | true>;
  submitted: number;
  started?: number;
  ended?: number;
  pid?: number;
}

export interface Fate {
  /** Regular expression matched against the job name (`report-<id>-<key16>`). */
  name: string;
  /** Held pending until this many jobs have been submitted (in all), with `reason` (default Priority). */
  untilJobs?: number;
  /** Held pending this long once its dependencies are done, with `reason` (default Priority). */
  pendingMs?: number;
  reason?: string;
  /** End the job in this state after `runMs` instead of running its script. */
  final?: 'TIMEOUT' | 'OUT_OF_MEMORY' | 'NODE_FAIL' | 'FAILED';
  runMs?: number;
  exitCode?: number;
}

export interface FakeSlurm {
  dir: string;
  /** PATH (wrappers first) and FAKE_SLURM_DIR. */
  env: { PATH: string; FAKE_SLURM_DIR: string };
  jobs(): Promise<FakeJob[]>;
  /** Every command called, in order. */
  calls(): Promise<{ command: string; args: string[]; t: number }[]>;
  fates(fates: Fate[]): Promise<void>;
  /** Cancels what still runs (by process group) and removes the folder. */
  cleanup(): Promise<void>;
}

const script = path.join(import.meta.dirname, 'fake-slurm.mjs');

export async function fakeSlurm(config: { partitions?: string[] } = {}): Promise<FakeSlurm> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fake-slurm-'));
  const bin = path.join(dir, 'bin');
  const state = path.join(dir, 'state');
  await mkdir(bin, { recursive: true });
  await mkdir(path.join(state, 'jobs'), { recursive: true });
  await writeFile(path.join(state, 'config.json'), JSON.stringify(config));
  for (const command of ['sbatch', 'squeue', 'scontrol', 'scancel']) {
    const file = path.join(bin, command);
    await writeFile(file, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(script)} ${command} "$@"\n`);
    await chmod(file, 0o755);
  }
  const jobs = async (): Promise<FakeJob[]> => {
    const out: FakeJob[] = [];
    for (const name of await readdir(path.join(state, 'jobs'))) {
      if (!/^\d+\.json$/.test(name)) continue;
      try {
        out.push(JSON.parse(await readFile(path.join(state, 'jobs', name), 'utf8')) as FakeJob);
      } catch {
        // being replaced this instant
      }
    }
    return out.sort((a, b) => Number(a.id) - Number(b.id));
  };
  return {
    dir: state,
    env: { PATH: `${bin}:${process.env['PATH'] ?? ''}`, FAKE_SLURM_DIR: state },
    jobs,
    async calls() {
      const text = await readFile(path.join(state, 'log.jsonl'), 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { command: string; args: string[]; t: number });
    },
    async fates(fates) {
      await writeFile(path.join(state, 'fates.json'), JSON.stringify(fates));
    },
    async cleanup() {
      for (const job of await jobs()) {
        if (job.pid !== undefined) {
          try {
            process.kill(-job.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
