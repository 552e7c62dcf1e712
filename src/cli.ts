#!/usr/bin/env node
/**
 * The command line: `report` (run stale cells, weave HTML, print PDF) and `check`
 * (prove freshness, types, inline values and claims without running anything).
 * Parsing flags happens here and only here; the engine receives plain options (with, for
 * the commands that run cells, the executor the flags chose) and an effects object (I/O).
 * Every ReportError is caught once, here.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VFile } from 'vfile';
import { build } from './engine/build.ts';
import { check } from './engine/check.ts';
import { nodeEffects } from './engine/effects.ts';
import { ReportError } from './engine/errors.ts';
import { childProcessExecutor, type Executor } from './engine/child-launcher.ts';
import { findBrowser, printPdf } from './engine/pdf.ts';
import { formatProblems, PROBLEM_FORMATS, type ProblemFormat } from './engine/problems.ts';
import { markSeverity } from './engine/severity.ts';
import { formatVerdicts, verify } from './engine/verify.ts';
import { formatMigration, migrateKeys } from './engine/migrate.ts';
import { parseSlurmFlags } from './engine/resources.ts';
import { onPath, slurmExecutor } from './engine/slurm.ts';
import { startPreview } from './engine/preview.ts';
import { DEFAULT_HOST } from './engine/preview-server.ts';

const DEFAULT_DOC = 'report/report.md';
/** The preview's port when --port is not given (a free one is taken if it is busy). */
const DEFAULT_PORT = 4747;


function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number, 0–65535 (0: any free port)');
  return n;
}

/** Prints the document's problems (`file:line:col  rule-id  message`, or `--format pretty`); returns true when clean. */
function report(file: VFile, profile: string, format: ProblemFormat): boolean {
  const clean = markSeverity(file, profile);
  process.stderr.write(formatProblems(file, format));
  return clean;
}

function formatOption(): Option {
  return new Option('--format <form>', 'how problems are printed: lines (file:line:col  rule-id  message) or pretty (grouped)')
    .choices(PROBLEM_FORMATS)
    .default('lines');
}

function executorOption(): Option {
  return new Option('--executor <name>', 'where cells run: local child processes, or one Slurm job each (sbatch)').choices(['local', 'slurm']).default('local');
}

function slurmOption(): Option {
  return new Option('--slurm <key=value>', 'Slurm default over the front matter\'s slurm: (partition, account, qos, constraint, cpus, mem, gpus, time, extra); repeatable')
    .argParser((value: string, previous: string[] = []) => [...previous, value]);
}

/**
 * The executor `--executor` and `--slurm` ask for (flag errors are thrown at once, exit 2);
 * made when called, so that a command that runs no cell makes none.
 */
function executorFromFlags(flags: { executor?: string; slurm?: string[] }, env: NodeJS.ProcessEnv): () => Executor {
  if (flags.slurm !== undefined && flags.executor !== 'slurm') throw new ReportError('--slurm sets defaults for --executor slurm; add --executor slurm', 2);
  let defaults;
  try {
    defaults = parseSlurmFlags(flags.slurm ?? []);
  } catch (error) {
    throw new ReportError((error as Error).message, 2);
  }
  if (flags.executor !== 'slurm') return () => childProcessExecutor({ env });
  if (!onPath('sbatch', env)) {
    throw new ReportError('--executor slurm: sbatch is not on the PATH; run the build on a login node of a Slurm cluster (see "Running on a cluster" in the README)', 2);
  }
  const pollMs = Number(process.env['REPORT_SLURM_POLL_MS'] ?? '') || undefined;
  return () =>
    slurmExecutor({
      env,
      defaults,
      ...(process.env['REPORT_SLURM_NODE'] ? { nodePath: process.env['REPORT_SLURM_NODE'] } : {}),
      ...(pollMs === undefined ? {} : { pollMs, queueMs: pollMs * 2 }),
    });
}

export function program(): Command {
  const cli = new Command('report')
    .description('Literate reports: Markdown with TypeScript cells whose results are stored by content hash.')
    .showHelpAfterError();

  cli
    .command('report', { isDefault: true })
    .description('run stale or missing cells, then weave build/<doc>.html and print build/<doc>.pdf')
    .argument('[doc]', 'Markdown document', DEFAULT_DOC)
    .addOption(new Option('--profile <name>', 'parameter profile (full is committed; quick runs in minutes)'))
    .option('--jobs <n>', 'cells run in parallel (default: number of cores)', positiveInt)
    .option('--rerun <id...>', 're-run these cells and their dependents even when fresh')
    .option('--rerun-all', 're-run every cell')
    .option('--only <id...>', 'run only these cells and the stale cells they import; other stale cells are left for a full build (the page is partial)')
    .option('--out <dir>', 'output directory', 'build')
    .option('--results <dir>', 'results store (default: <doc dir>/results)')
    .option('--no-pdf', 'skip printing the PDF')
    .option('--browser <path>', 'Chrome/Chromium used to print the PDF (also REPORT_BROWSER)')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend for cells (sets TFJS_BACKEND)').choices(['tensorflow', 'wasm', 'cpu']))
    .addOption(formatOption())
    .addOption(executorOption())
    .addOption(slurmOption())
    .option('--verify [id...]', 're-run these cells (default: all) into a scratch store and compare them bit for bit with the committed results (values the front matter declares measured: for presence and type only)')
    .option('--no-cache', 'bundle every cell to key it, instead of using the keys remembered between commands (node_modules/.cache/report)')
    .option('--migrate-keys', 'run nothing: re-key the results stored under the previous key scheme that are fresh under it and whose packages read at run time are shown, from package-lock.json in git, to be the installed ones (every profile\'s store, or --profile\'s)')
    .action(async (doc: string, flags) => {
      const env = { ...process.env, ...(flags.backend ? { TFJS_BACKEND: flags.backend } : {}) };
      if (flags.executor === 'slurm' && flags.verify !== undefined) throw new ReportError('--verify runs cells on this machine; leave out --executor slurm', 2);
      const makeExecutor = executorFromFlags(flags, env);
      const effects = nodeEffects();
      if (flags.migrateKeys === true) {
        const summary = await migrateKeys(
          { docPath: doc, profile: flags.profile, resultsDir: flags.results, onWait: (message) => process.stdout.write(`${message}\n`) },
          effects,
        );
        const clean = report(summary.file, summary.profile, flags.format);
        process.stdout.write(formatMigration(summary));
        if (!clean) process.exitCode = 1;
        return;
      }
      // Where the cells run (--migrate-keys above runs none).
      const executor = makeExecutor();
      if (flags.verify !== undefined) {
        const summary = await verify(
          { docPath: doc, executor, profile: flags.profile, jobs: flags.jobs, resultsDir: flags.results, ids: flags.verify === true ? [] : flags.verify },
          effects,
        );
        const clean = report(summary.file, summary.profile, flags.format);
        process.stdout.write(formatVerdicts(summary));
        if (!clean || !summary.ok) process.exitCode = 1;
        return;
      }
      const summary = await build(
        {
          docPath: doc,
          executor,
          profile: flags.profile,
          jobs: flags.jobs,
          rerun: flags.rerun,
          rerunAll: flags.rerunAll,
          only: flags.only,
          keyCache: flags.cache,
          outDir: flags.out,
          resultsDir: flags.results,
          pdf: flags.pdf,
          printPdf: async (htmlPath, pdfPath) => {
            const browser = await findBrowser({ flag: flags.browser, env });
            const printed = await printPdf(htmlPath, pdfPath, { browserPath: browser.path, env });
            process.stdout.write(`printed ${path.relative(process.cwd(), pdfPath)} in ${(printed.ms / 1000).toFixed(1)} s (${browser.source} browser)\n`);
            return printed;
          },
        },
        effects,
      );
      if (summary.failedHtmlPath !== undefined) {
        const kept = summary.keptPrevious ? `; the last good build, ${path.relative(process.cwd(), summary.htmlPath)}, is left as it was` : '';
        // Only --only's omissions kept the page from being good (a cell skipped for a failed import implies a failure).
        const partial = summary.notRun !== undefined && summary.failed.length === 0;
        process.stdout.write(
          partial
            ? `partial build (--only): wrote ${path.relative(process.cwd(), summary.failedHtmlPath)} with ${summary.notRun!.length} stale cell(s) not run${kept}\n`
            : `build failed: wrote ${path.relative(process.cwd(), summary.failedHtmlPath)}${kept}\n`,
        );
      } else {
        process.stdout.write(
          summary.upToDate === true
            ? `${path.relative(process.cwd(), summary.htmlPath)} is up to date (nothing it is made from changed)\n`
            : `wrote ${path.relative(process.cwd(), summary.htmlPath)}\n`,
        );
        if (summary.pdfUpToDate === true && summary.pdfPath !== undefined) {
          process.stdout.write(`${path.relative(process.cwd(), summary.pdfPath)} is up to date (printed from this page)\n`);
        }
      }
      if (!report(summary.file, summary.profile, flags.format)) process.exitCode = 1;
    });

  cli
    .command('check')
    .description('prove, without running cells, that results are fresh, cells type-check and every claim holds')
    .argument('[doc]', 'Markdown document', DEFAULT_DOC)
    .addOption(new Option('--profile <name>', 'profile whose results are checked (default: the document\'s, else full)'))
    .option('--results <dir>', 'results store (default: <doc dir>/results)')
    .option('--no-typecheck', 'skip the TypeScript pass')
    .option('--no-cache', 'bundle every cell to key it, instead of using the keys remembered between commands (node_modules/.cache/report)')
    .addOption(formatOption())
    .action(async (doc: string, flags) => {
      const effects = nodeEffects();
      const summary = await check(
        { docPath: doc, profile: flags.profile, resultsDir: flags.results, typecheck: flags.typecheck, keyCache: flags.cache },
        effects,
      );
      const clean = report(summary.file, summary.profile, flags.format);
      const legacy = summary.legacy.length > 0 ? ` (${summary.legacy.length} under the previous key scheme: run --migrate-keys)` : '';
      process.stdout.write(
        `${summary.file.path}: ${summary.fresh.length} fresh${legacy}, ${summary.stale.length} stale, ${summary.missing.length} missing; ` +
          `${clean ? (summary.profile === 'full' ? 'all claims hold' : `clean at profile ${summary.profile} (claims are only binding at full)`) : 'problems found'} (${Math.round(summary.ms)} ms)\n`,
      );
      if (!clean) process.exitCode = 1;
    });

  cli
    .command('preview')
    .description('serve the document\'s page on 127.0.0.1, rebuild on every save (re-running only stale cells) and push the new page to the browser')
    .argument('[doc]', 'Markdown document', DEFAULT_DOC)
    .option('--port <n>', `port (default ${DEFAULT_PORT}, or a free one if it is busy; 0: any free port)`, port)
    .option('--host <address>', `interface to listen on (default ${DEFAULT_HOST}; any other exposes the preview, and its stop buttons, to that network)`)
    .addOption(new Option('--profile <name>', 'parameter profile (full is committed; quick runs in minutes)'))
    .option('--jobs <n>', 'cells run in parallel (default: number of cores)', positiveInt)
    .option('--out <dir>', 'output directory of build/<doc>.html', 'build')
    .option('--results <dir>', 'results store (default: <doc dir>/results)')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend for cells (sets TFJS_BACKEND)').choices(['tensorflow', 'wasm', 'cpu']))
    .addOption(executorOption())
    .addOption(slurmOption())
    .addOption(formatOption())
    .action(async (doc: string, flags) => {
      const env = { ...process.env, ...(flags.backend ? { TFJS_BACKEND: flags.backend } : {}) };
      const executor = executorFromFlags(flags, env)();
      const effects = nodeEffects();
      const options = {
        docPath: doc,
        executor,
        profile: flags.profile,
        jobs: flags.jobs,
        outDir: flags.out,
        resultsDir: flags.results,
        format: flags.format as ProblemFormat,
        ...(flags.host === undefined ? {} : { host: flags.host as string }),
      };
      let preview;
      try {
        preview = await startPreview({ ...options, port: flags.port ?? DEFAULT_PORT }, effects);
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw error;
        if (flags.port !== undefined) throw new ReportError(`port ${flags.port} is in use: choose another with --port (0: any free port)`, 2);
        preview = await startPreview({ ...options, port: 0 }, effects);
      }
      if (flags.host !== undefined && flags.host !== DEFAULT_HOST) {
        process.stderr.write(`warning: listening on ${flags.host}: anyone who can reach it can read the report and stop its cells\n`);
      }
      process.stdout.write(`preview of ${path.relative(process.cwd(), path.resolve(doc)) || doc} at ${preview.url} (Ctrl-C to stop)\n`);
      await new Promise<never>(() => {
        // Serves until Ctrl-C (main's signal handlers stop the running cells and exit).
      });
    });

  return cli;
}

/** Runs the command line: signal handling, argv parsing, ReportError → exit code. */
export async function main(argv: string[] = process.argv): Promise<void> {
  // Ctrl-C or a kill: exit normally, so that the launcher's exit handler stops the running
  // cells' process groups (dying from the signal would skip it and orphan them). Results of
  // cells that finished are already stored.
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping running cells; finished cells are stored\n`);
      process.exit(code);
    });
  }
  try {
    await program().parseAsync(argv);
  } catch (error) {
    if (error instanceof ReportError) {
      process.stderr.write(`error: ${error.message}\n`);
      process.exitCode = error.exitCode;
    } else {
      throw error;
    }
  }
}

/** True when this module is the process's entry point (not imported), symlinks resolved. */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === realpathSync(entry);
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
