/**
 * Slurm's command-line tools as the Slurm executor (slurm.ts) uses them — `sbatch`,
 * `squeue`, `scontrol`, `scancel` — and the parsing of what they print. The commands are
 * injected (`SlurmCommands`), so tests use fakes on the PATH or in memory.
 *
 * Facts this relies on (slurm 22.05): `sbatch --parsable` prints `<id>[;cluster]`;
 * `squeue -h -t all -j <ids> -o <format>` lists the ids Slurm still knows (in any state) and
 * exits 1 only when it knows none of them; `scontrol -o show job <id>` prints one line of
 * `Key=Value` fields (JobState, Reason, NodeList, ExitCode=<code>:<signal>) until the job is
 * purged (MinJobAge), then `Invalid job id specified`. Accounting (`sacct`) is not needed.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';

export type SlurmCommand = 'sbatch' | 'squeue' | 'scontrol' | 'scancel';

export interface CommandResult {
  /** Exit code; 127 when the command is not installed. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface SlurmCommands {
  run(command: SlurmCommand, args: string[]): Promise<CommandResult>;
  /** The same, synchronously: the exit handler (Ctrl-C) cancels jobs with it. */
  runSync(command: SlurmCommand, args: string[]): CommandResult;
  /**
   * Runs the command once more in `seconds`, from a detached process that outlives this one:
   * the exit handler cancels by name a job whose sbatch was still under way (it may be
   * queued a moment after the process is gone).
   */
  later?(command: SlurmCommand, args: string[], seconds: number): void;
}

/** The commands found on the PATH of `env`, each given `timeoutMs` (a controller that does not answer). */
export function systemSlurmCommands(env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): SlurmCommands {
  return {
    run(command, args) {
      return new Promise((resolvePromise) => {
        execFile(command, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : error.code === 'ENOENT' ? 127 : 1;
          resolvePromise({ code, stdout: String(stdout), stderr: error !== null && stderr === '' ? error.message : String(stderr) });
        });
      });
    },
    runSync(command, args) {
      const result = spawnSync(command, args, { env, timeout: timeoutMs, encoding: 'utf8' });
      const notFound = (result.error as { code?: unknown } | undefined)?.code === 'ENOENT';
      return { code: notFound ? 127 : (result.status ?? 1), stdout: result.stdout ?? '', stderr: result.stderr ?? result.error?.message ?? '' };
    },
    later(command, args, seconds) {
      try {
        const quoted = [command, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
        spawn('sh', ['-c', `sleep ${Math.max(0, Math.round(seconds))}; ${quoted} >/dev/null 2>&1`], { env, detached: true, stdio: 'ignore' }).unref();
      } catch {
        // best effort: the next build cancels or adopts the job by its name anyway
      }
    },
  };
}

/** What Slurm says about one job. */
export interface JobInfo {
  /** Slurm's state name (PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, …). */
  state: string;
  /** Why it waits (Priority, Resources, Dependency, …), or why it ended (NonZeroExitCode, …); `None` → undefined. */
  reason?: string;
  /** Where it runs or ran. */
  nodes?: string;
  /** The batch script's exit code and the signal that ended it, when scontrol says. */
  exitCode?: number;
  signal?: number;
}

/** States after which a job never runs again. Everything else (PENDING, RUNNING, COMPLETING, SUSPENDED, REQUEUED, …) is live. */
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'REVOKED', 'SPECIAL_EXIT']);

export function isTerminal(state: string): boolean {
  return TERMINAL.has(state);
}

/** The squeue format {@link parseSqueue} reads: id, state, nodes, reason (last: it may hold spaces). */
export const SQUEUE_FORMAT = '%i|%T|%N|%r';

/** Lines of `squeue -h -o '%i|%T|%N|%r'` → job id → info. */
export function parseSqueue(stdout: string): Map<string, JobInfo> {
  const jobs = new Map<string, JobInfo>();
  for (const line of stdout.split('\n')) {
    const parts = line.trim().split('|');
    if (parts.length < 4 || !/^\d+/.test(parts[0]!)) continue;
    const [id, state, nodes, ...reason] = parts;
    jobs.set(id!, info(state!, reason.join('|'), nodes!));
  }
  return jobs;
}

/** `scontrol -o show job <id>` → info; undefined when the text holds no JobState. */
export function parseScontrol(stdout: string): JobInfo | undefined {
  const field = (name: string): string | undefined => new RegExp(`(?:^|\\s)${name}=(\\S*)`).exec(stdout)?.[1];
  const state = field('JobState');
  if (state === undefined) return undefined;
  const result = info(state, field('Reason') ?? '', field('NodeList') ?? '');
  const exit = /(?:^|\s)ExitCode=(\d+):(\d+)/.exec(stdout);
  if (exit !== null) {
    result.exitCode = Number(exit[1]);
    result.signal = Number(exit[2]);
  }
  return result;
}

function info(state: string, reason: string, nodes: string): JobInfo {
  const result: JobInfo = { state: state.trim().split(/\s/)[0]!.toUpperCase() };
  const why = reason.trim().replace(/^\((.*)\)$/, '$1');
  if (why !== '' && why !== 'None' && why !== '(null)') result.reason = why;
  const where = nodes.trim();
  if (where !== '' && where !== '(null)' && where !== 'None') result.nodes = where;
  return result;
}

/** `sbatch --parsable` output → the job id. */
export function parseSbatch(stdout: string): string | undefined {
  return /^\s*(\d+)/.exec(stdout)?.[1];
}

/** True when scontrol or squeue says the id is unknown (purged after MinJobAge, or never was). */
export function isUnknownJob(result: CommandResult): boolean {
  return /Invalid job id/i.test(result.stderr + result.stdout);
}
