/**
 * What a cell asks of a cluster: the cell options `cpus=`, `mem=`, `gpus=`, `time=` and
 * `partition=`, the front matter's `slurm:` defaults and the `--slurm key=value` flags. One
 * validator per value, shared by the three, so a value is accepted or refused with the same
 * words wherever it is written. Values follow Slurm's own syntax (`mem=4G`, `time=1:30:00`,
 * `time=90` is 90 minutes), so what works in an sbatch script works here.
 *
 * Resource options are not part of a cell's key (see {@link keyedOptions}): they say where
 * and with what a cell runs, not what it computes. `time` and `mem` also mean the local
 * `timeout` and `memory` (parse.ts applies them to both executors).
 */

/** Explicit resource requests of one cell (only what its options say). */
export interface CellResources {
  /** `cpus=`: CPUs for the cell's job (`--cpus-per-task`). */
  cpus?: number;
  /** `mem=` (or `memory=`): MiB; also the local memory cap. */
  memMiB?: number;
  /** `gpus=`: a count or `type:count` (`--gpus`). */
  gpus?: string;
  /** `time=` (or `timeout=`): seconds; also the local timeout. */
  timeSeconds?: number;
  /** `partition=`: one partition or a comma-separated list. */
  partition?: string;
}

/** Defaults for every cell's job: the front matter's `slurm:` mapping, then `--slurm key=value` flags. */
export interface SlurmDefaults extends CellResources {
  account?: string;
  qos?: string;
  /** `--constraint` (node features), e.g. `a100|h100`. */
  constraint?: string;
  /** Further sbatch arguments, each `--name=value` or `--flag` (e.g. `--mail-type=END`). */
  extra?: string[];
}

/** The cell options that are resources (not hashed into the key). */
export const RESOURCE_OPTIONS = ['cpus', 'mem', 'gpus', 'time', 'partition'] as const;
export type ResourceOption = (typeof RESOURCE_OPTIONS)[number];

/** The keys a `slurm:` mapping and `--slurm` flags accept. */
export const SLURM_KEYS = ['partition', 'account', 'qos', 'constraint', 'cpus', 'mem', 'gpus', 'time', 'extra'] as const;

/** A parsed value, or why it is refused (a sentence that completes `<key>=<value>: …`). */
export type Parsed<T> = { value: T } | { problem: string };

const NAME = /^[A-Za-z0-9_.-]+$/;

/** `cpus=<n>`: a whole number ≥ 1. */
export function parseCpus(text: string): Parsed<number> {
  const n = Number(text);
  return /^\d+$/.test(text) && Number.isSafeInteger(n) && n >= 1 ? { value: n } : { problem: 'expected a whole number of CPUs ≥ 1' };
}

/** `mem=<size>` as Slurm writes it: a whole number with an optional unit K, M (the default), G or T → MiB. */
export function parseMem(text: string): Parsed<number> {
  const m = /^(\d+)([KMGT])?B?$/i.exec(text);
  if (m === null) return { problem: 'expected a size such as 512, 512M, 4G (a whole number; no unit means MiB, as in Slurm)' };
  const n = Number(m[1]);
  const unit = (m[2] ?? 'M').toUpperCase();
  const mib = unit === 'K' ? Math.ceil(n / 1024) : unit === 'M' ? n : unit === 'G' ? n * 1024 : n * 1024 * 1024;
  return Number.isSafeInteger(mib) && mib >= 1 ? { value: mib } : { problem: 'expected at least 1 MiB' };
}

/** `gpus=<n>` or `gpus=<type>:<n>` (`--gpus`). */
export function parseGpus(text: string): Parsed<string> {
  return /^(?:[A-Za-z0-9_.-]+:)?[1-9]\d*$/.test(text) ? { value: text } : { problem: 'expected a count ≥ 1 or type:count, e.g. gpus=1 or gpus=a100:2' };
}

/**
 * `time=<limit>` in Slurm's formats → seconds: `minutes`, `minutes:seconds`,
 * `hours:minutes:seconds`, `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`.
 */
export function parseTime(text: string): Parsed<number> {
  const problem = { problem: 'expected a time limit as Slurm writes it: minutes (90), M:S, H:M:S (1:30:00) or D-H, D-H:M, D-H:M:S (2-12)' };
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(text);
  if (m === null) return problem;
  const [, days, a, b, c] = m;
  let seconds: number;
  if (days !== undefined) {
    // days-hours[:minutes[:seconds]]
    seconds = Number(days) * 86400 + Number(a) * 3600 + Number(b ?? 0) * 60 + Number(c ?? 0);
  } else if (c !== undefined) {
    seconds = Number(a) * 3600 + Number(b) * 60 + Number(c);
  } else if (b !== undefined) {
    seconds = Number(a) * 60 + Number(b);
  } else {
    seconds = Number(a) * 60;
  }
  if (!Number.isSafeInteger(seconds)) return problem;
  return seconds > 0 ? { value: seconds } : { problem: 'expected a time limit above zero' };
}

/** `partition=<name>[,<name>…]`. */
export function parsePartition(text: string): Parsed<string> {
  return text.split(',').every((part) => NAME.test(part)) ? { value: text } : { problem: 'expected a partition name (letters, digits, _ . -) or a comma-separated list of them' };
}

function parseName(what: string): (text: string) => Parsed<string> {
  return (text) => (NAME.test(text) ? { value: text } : { problem: `expected ${what} (letters, digits, _ . -)` });
}

function parseConstraint(text: string): Parsed<string> {
  return /^[A-Za-z0-9_.,&|[\]*()!:-]+$/.test(text) ? { value: text } : { problem: 'expected a node feature expression without spaces, e.g. a100 or "intel&ib"' };
}

function parseExtra(text: string): Parsed<string[]> {
  const args = text.split(/\s+/).filter(Boolean);
  return args.length > 0 && args.every((arg) => /^--[a-z][a-z-]*(=.+)?$/.test(arg))
    ? { value: args }
    : { problem: 'expected sbatch arguments, each --name=value or --flag, e.g. "--mail-type=END"' };
}

/** Validates one resource cell option. */
export function parseResourceOption(key: ResourceOption, text: string): Parsed<number | string> {
  switch (key) {
    case 'cpus':
      return parseCpus(text);
    case 'mem':
      return parseMem(text);
    case 'gpus':
      return parseGpus(text);
    case 'time':
      return parseTime(text);
    case 'partition':
      return parsePartition(text);
  }
}

/**
 * Applies one `key=value` default to `into` (a front-matter entry or a `--slurm` flag);
 * returns why it is refused, or undefined.
 */
export function applySlurmDefault(into: SlurmDefaults, key: string, value: unknown): string | undefined {
  if (!(SLURM_KEYS as readonly string[]).includes(key)) return `unknown key "${key}"; known keys: ${SLURM_KEYS.join(', ')}`;
  if (key === 'extra' && Array.isArray(value)) {
    const args: string[] = [];
    for (const item of value) {
      const parsed = typeof item === 'string' ? parseExtra(item) : { problem: 'expected a list of strings' };
      if ('problem' in parsed) return `extra: ${parsed.problem}`;
      args.push(...parsed.value);
    }
    into.extra = [...(into.extra ?? []), ...args];
    return undefined;
  }
  if (typeof value !== 'string' && typeof value !== 'number') return `${key}: expected a value, got ${value === null ? 'nothing' : Array.isArray(value) ? 'a list' : typeof value}`;
  const text = String(value).trim();
  const fail = (parsed: { problem: string }): string => `${key}=${text}: ${parsed.problem}`;
  switch (key) {
    case 'cpus':
    case 'mem':
    case 'gpus':
    case 'time':
    case 'partition': {
      const parsed = parseResourceOption(key, text);
      if ('problem' in parsed) return fail(parsed);
      if (key === 'cpus') into.cpus = parsed.value as number;
      else if (key === 'mem') into.memMiB = parsed.value as number;
      else if (key === 'time') into.timeSeconds = parsed.value as number;
      else if (key === 'gpus') into.gpus = parsed.value as string;
      else into.partition = parsed.value as string;
      return undefined;
    }
    case 'account':
    case 'qos': {
      const parsed = parseName(key === 'account' ? 'an account name' : 'a QOS name')(text);
      if ('problem' in parsed) return fail(parsed);
      into[key] = parsed.value;
      return undefined;
    }
    case 'constraint': {
      const parsed = parseConstraint(text);
      if ('problem' in parsed) return fail(parsed);
      into.constraint = parsed.value;
      return undefined;
    }
    default: {
      const parsed = parseExtra(text);
      if ('problem' in parsed) return fail(parsed);
      into.extra = [...(into.extra ?? []), ...parsed.value];
      return undefined;
    }
  }
}

/** The front matter's `slurm:` value → defaults and the problems found (each a sentence). */
export function readSlurmSection(value: unknown): { defaults: SlurmDefaults; problems: string[] } {
  const defaults: SlurmDefaults = {};
  if (value === null || value === undefined) return { defaults, problems: [] };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { defaults, problems: ['front matter "slurm" must be a mapping, e.g. slurm: { partition: gpu, account: my-lab }'] };
  }
  const problems: string[] = [];
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    const problem = applySlurmDefault(defaults, key, entry);
    if (problem !== undefined) problems.push(`front matter "slurm": ${problem}`);
  }
  return { defaults, problems };
}

/** `--slurm key=value` flags → defaults; throws an Error with the reason on a bad flag. */
export function parseSlurmFlags(flags: string[]): SlurmDefaults {
  const defaults: SlurmDefaults = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new Error(`--slurm ${flag}: expected key=value (keys: ${SLURM_KEYS.join(', ')})`);
    const problem = applySlurmDefault(defaults, flag.slice(0, eq), flag.slice(eq + 1));
    if (problem !== undefined) throw new Error(problem.startsWith(`${flag}:`) ? `--slurm ${problem}` : `--slurm ${flag}: ${problem}`);
  }
  return defaults;
}

/**
 * The part of a cell's option string that goes into its key: the string itself, minus
 * resource options. A cell without resource options keeps its exact string (so its key
 * is what it always was); moving a cell to another partition or giving it more CPUs does
 * not re-run it.
 */
export function keyedOptions(rawOptions: string): string {
  const tokens = rawOptions.split(/\s+/).filter(Boolean);
  const isResource = (token: string): boolean => (RESOURCE_OPTIONS as readonly string[]).includes(token.slice(0, token.indexOf('=')));
  if (!tokens.some(isResource)) return rawOptions;
  return tokens.filter((token) => !isResource(token)).join(' ');
}

/** A Slurm time limit for `seconds`, in whole minutes rounded up (Slurm keeps minutes). */
export function slurmMinutes(seconds: number): number {
  return Math.max(1, Math.ceil(seconds / 60));
}
