/**
 * Shared types of the literate engine. The engine knows nothing about machine learning:
 * a cell is TypeScript code, its results are plain values plus outputs (figures, tables,
 * printed text).
 *
 * Pipeline stages (one module each):
 *   parse.ts     Markdown → mdast + cells + front matter (positioned messages on the VFile),
 *                and each cell's `cell:` imports (a syntactic pre-pass: the graph needs them
 *                before any cell is bundled)
 *   graph.ts     cells' `cell:` imports → dependency graph, topological order, cycles
 *   bundle.ts    each cell bundled once by esbuild: the bundle, the project files and
 *                packages it read, its export names (their only source)
 *   key.ts       content key of each cell from what its bundle read (the code that runs,
 *                project files, package versions, deps' keys); key-cache.ts remembers them
 *   store.ts     content-addressed results store (atomic writes, checksums, gc)
 *   serialize.ts values ↔ bytes (typed arrays and tensors bit for bit)
 *   scheduler.ts      runs stale cells up to --jobs, each once its dependencies have results
 *   child-launcher.ts one cell in one child process (timeout, memory cap, error → Markdown line)
 *   child-entry.ts    the child process's entry point: sets up the runtime, imports the cell,
 *                     saves its exports
 *   slurm.ts          the other executor: one sbatch job per cell (afterok dependencies,
 *                     states, cancel, adoption); slurm-commands.ts Slurm's commands and output;
 *                     resources.ts cpus=/mem=/gpus=/time=/partition= and the slurm: defaults
 *   runtime.ts   the module cells import as 'report:runtime'
 *   checkpoint.ts snapshots of long cells (checkpoint/resume), outside the store
 *   inline.ts    `{ts} expr` inline values and `{claim} expr` claims
 *   refs.ts      figure/table/equation numbering and @fig-/@tbl-/@eq- references
 *   cite.ts      [@key] citations against BibTeX (citation-js), the References section
 *   highlight.ts build-time syntax highlighting (shiki), cached by content
 *   provenance.ts the provenance appendix, from the stored results' metadata
 *   weave.ts     unified pipeline → self-contained HTML
 *   pdf.ts       HTML → PDF with playwright-core
 *   typecheck.ts cells as TypeScript, errors mapped to Markdown lines
 *   build.ts     orchestration of `report`;  check.ts  orchestration of `check`
 *   verify.ts    `report --verify`: re-run into a scratch store, compare bit for bit
 *                (compare.ts), measured values for presence and type only (measured.ts)
 *   problems.ts  problems as `file:line:col  rule-id  message` (or --format pretty)
 */
import type { Position } from 'unist';
import type { VerifySettings } from './measured.ts';
import type { CellResources, SlurmDefaults } from './resources.ts';

/** Options from the info string: ```ts run id=x echo=false timeout=600 */
export interface CellOptions {
  /** Show the code in the output (folded). Default true. */
  echo: boolean;
  /** Wall-clock limit in seconds. Default 1800. */
  timeout: number;
  /** Heap cap of the child process in MiB. Default 8192. */
  memory: number;
  /** Overrides the document seed for this cell. */
  seed?: number;
  /**
   * What the cell asks of a cluster (resources.ts): `cpus=`, `mem=`, `gpus=`, `time=`,
   * `partition=`, and `timeout=`/`memory=` when given (they mean `time`/`mem`). Only what
   * the options say; absent when they say none of it. Not part of the key.
   */
  resources?: CellResources;
}

export interface Cell {
  id: string;
  /** Source code of the cell (the fence's content). */
  code: string;
  options: CellOptions;
  /**
   * The info string after `ts run`, hashed so any option change re-runs the cell — except
   * resource options (`cpus=`, `mem=`, `gpus=`, `time=`, `partition=`), which are left out
   * (resources.ts `keyedOptions`; a cell without them keeps its string as written).
   */
  rawOptions: string;
  /** Position of the whole fenced block in the Markdown file. */
  position: Position;
  /** 1-based Markdown line of the first line of code (fence line + 1). */
  codeLine: number;
  /** Ids imported with `import … from 'cell:<id>'`, in source order, unique. */
  imports: string[];
}

export interface FrontMatter {
  title?: string;
  author?: string;
  date?: string;
  /** Default profile when --profile is not given. */
  profile?: string;
  /** Document seed (default 0). */
  seed?: number;
  /** Number h2… headings automatically (default true); false when headings carry their own numbers. */
  'number-sections'?: boolean;
  /** Append the provenance appendix (provenance.ts). Default false. */
  provenance?: boolean;
  /** Defaults for cells run as Slurm jobs (`--executor slurm`), validated by parse.ts. */
  slurm?: SlurmDefaults;
  /** What `report --verify` compares for presence and type only (measured.ts); validated by parse.ts. */
  verify?: VerifySettings;
  [key: string]: unknown;
}

/** What a cell produced besides its exports, in emission order. */
export type Output = FigureOutput | TableOutput | TextOutput;

export interface FigureOutput {
  kind: 'figure';
  /** [a-z0-9-]+ ; referenced in prose as @fig-<name> */
  name: string;
  ext: 'png' | 'svg';
  data: Uint8Array;
  caption?: string;
  alt?: string;
  /** Width in CSS pixels / print percentage hint, optional. */
  width?: number;
}

export interface TableOutput {
  kind: 'table';
  /** referenced in prose as @tbl-<name> */
  name: string;
  columns: string[];
  rows: (string | number | boolean | null)[][];
  caption?: string;
}

export interface TextOutput {
  kind: 'text';
  text: string;
}

export interface ResultMeta {
  /** Wall-clock run time of the cell in milliseconds. */
  runMs: number;
  /** Recorded, not hashed: e.g. the tfjs backend. Set by cells through runtime.meta(). */
  backend?: string;
  /** Versions of the npm packages the cell imports or reads at run time (hashed). */
  versions: Record<string, string>;
  profile: string;
  seed: number;
  createdAt: string;
  /** File name of the Markdown document that produced the result (the store's gc uses it). */
  doc?: string;
  /** Anything else a cell recorded with runtime.meta(). */
  extra?: Record<string, unknown>;
  /** What the key was made of, so `check` can say what changed when the result goes stale. */
  fingerprint?: KeyFingerprint;
  /** Where and from what code the cell ran (recorded, not hashed; the provenance appendix reads it). */
  environment?: RunEnvironment;
  /**
   * Set by `report --migrate-keys`: the key the result was computed and first stored under
   * (a previous key scheme), when it was fresh there — the same code, re-keyed.
   */
  previousKey?: string;
  /**
   * Set by `report --migrate-keys`: the key the entry had before its last re-keying (its
   * previous-scheme key), so that a cell importing it knows the result was adopted, not
   * computed again.
   */
  migratedFrom?: string;
}

/** The machine, Node and code a result was computed with. */
export interface RunEnvironment {
  /** CPU model, e.g. "AMD EPYC 7B13". */
  cpu: string;
  /** Logical cores available to the process. */
  cores: number;
  /** Operating system: type, release, architecture, e.g. "Linux 6.1.0 x64". */
  os: string;
  /** Node version, e.g. "v20.20.2". */
  node: string;
  /** The project's git commit when the cell ran, and whether the working tree had uncommitted changes. */
  git?: { commit: string; dirty: boolean };
}

/** The ingredients of a cell's key (hashes, not contents). */
export interface KeyFingerprint {
  /**
   * The key scheme (key.ts's ENGINE_FORMAT_VERSION). Absent in results stored under
   * engine/1, whose `code` and `inputs` hashed source text.
   */
  engine?: string;
  /** sha256 of the code the cell runs (key.ts `whatRuns`; engine/1: of its source text). */
  code: string;
  /** The raw options string. */
  options: string;
  /** Project file (relative to the project root) → sha256 of the code it runs (engine/1: of its bytes). */
  inputs: Record<string, string>;
  /** Imported cell id → its key. */
  deps: Record<string, string>;
  profile: string;
  seed: number;
  /** npm package (imported, or since engine/3 also read at run time) → installed version. */
  packages: Record<string, string>;
}

/**
 * A cell's key under the previous key scheme (engine/2, which did not hash the packages a
 * cell reads at run time), its ingredients, and what the current key adds to them.
 */
export interface PreviousSchemeKey {
  key: string;
  fingerprint: KeyFingerprint;
  /**
   * Packages the cell's code resolves at run time (name → installed version) that its key
   * hashes and the previous one did not (a package it also imports was hashed already).
   */
  readAtRunTime: Record<string, string>;
  /** Imported cells whose key differs from their previous one by such packages (theirs, or of cells they import). */
  depsReadAtRunTime: string[];
}

/** A cell's result. `kind` tells it from a {@link CellFailure}: use {@link isFailure}. */
export interface CellResult {
  kind: 'result';
  id: string;
  key: string;
  exports: Record<string, unknown>;
  outputs: Output[];
  meta: ResultMeta;
}

export interface CellFailure {
  id: string;
  kind: 'error' | 'timeout' | 'memory' | 'skipped' | 'crash';
  message: string;
  /** Markdown position of the throwing line, when known. */
  line?: number;
  column?: number;
  stack?: string;
  /** Printed text before the failure. */
  outputs?: Output[];
}

/** What running (or looking up) a cell gave: a result or a failure, told apart by `kind`. */
export type CellOutcome = CellResult | CellFailure;

/** The one way to tell a failed cell from a result; `undefined` (no outcome yet) is neither. */
export function isFailure(outcome: CellOutcome | undefined): outcome is CellFailure {
  return outcome !== undefined && outcome.kind !== 'result';
}

/** True for a result (not a failure, not undefined). */
export function isResult(outcome: CellOutcome | undefined): outcome is CellResult {
  return outcome !== undefined && outcome.kind === 'result';
}

export type CellState = 'fresh' | 'stale' | 'missing' | 'running' | 'ran' | 'failed' | 'skipped';

/** A progress event sent by a running cell through runtime.progress(). */
export interface ProgressEvent {
  id: string;
  step: number;
  total?: number;
  label?: string;
  metrics?: Record<string, number>;
}
