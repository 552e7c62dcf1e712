/**
 * The provenance appendix (`provenance: true` in the front matter): a last, unnumbered
 * section saying what the results behind the document were computed with — the machine
 * (CPU, cores, OS), Node and the npm packages the cells import or read at run time, the
 * TensorFlow.js backend of each cell, the document seed, each cell's run time and when it
 * ran, the total compute, the git commit the code was at, and how to reproduce it all.
 *
 * Everything comes from the stored results' metadata (build.ts records the environment in
 * each result when the cell runs), never from the machine that weaves: a build that runs
 * nothing produces the same appendix, on any machine. Results stored before environments
 * were recorded say so.
 */
import type { PhrasingContent, Root, RootContent, Table, TableCell } from 'mdast';
import type { Executor } from './child-launcher.ts';
import { isFailure, type CellOutcome, type RunEnvironment } from './types.ts';

/**
 * An executor that records `environment` in the metadata of every result it returns. What
 * the executor recorded itself (the Slurm executor: the compute node's CPU, cores, OS and
 * Node) wins over this machine's; the git commit is this machine's (the project is shared).
 */
export function recordEnvironment(executor: Executor, environment: RunEnvironment | undefined): Executor {
  if (environment === undefined) return executor;
  return {
    async run(job, hooks) {
      const outcome = await executor.run(job, hooks);
      return isFailure(outcome) ? outcome : { ...outcome, meta: { ...outcome.meta, environment: { ...environment, ...outcome.meta.environment } } };
    },
  };
}

export interface ProvenanceOptions {
  /** The document's cells, in order. */
  cells: string[];
  results: Map<string, CellOutcome>;
  /** The front matter's seed (the document seed). */
  seed: number;
  /** True when the front matter declares measured values (`verify: measured:`), which `--verify` does not compare bit for bit. */
  measured?: boolean;
}

/** unified plugin: appends the provenance section (after the References, if any). */
export function remarkProvenance(options: ProvenanceOptions) {
  return (tree: Root): void => {
    tree.children.push(...provenanceSection(options));
  };
}

const text = (value: string): PhrasingContent => ({ type: 'text', value });
const code = (value: string): PhrasingContent => ({ type: 'inlineCode', value });
const strong = (value: string): PhrasingContent => ({ type: 'strong', children: [text(value)] });
const paragraph = (...children: PhrasingContent[]): RootContent => ({ type: 'paragraph', children });

/** The section as mdast: heading, paragraphs, one table. */
export function provenanceSection({ cells, results, seed, measured }: ProvenanceOptions): RootContent[] {
  const heading: RootContent = {
    type: 'heading',
    depth: 2,
    children: [text('Provenance')],
    data: { unnumbered: true },
  };
  const stored = cells.flatMap((id) => {
    const outcome = results.get(id);
    return outcome && !isFailure(outcome) ? [outcome] : [];
  });
  const missing = cells.filter((id) => !stored.some((r) => r.id === id));
  const out: RootContent[] = [heading];
  if (stored.length === 0) {
    out.push(paragraph(text('No cell has a stored result yet.')));
    return out;
  }

  const profiles = unique(stored.map((r) => r.meta.profile));
  const total = stored.reduce((sum, r) => sum + r.meta.runMs, 0);
  const longest = stored.reduce((a, b) => (b.meta.runMs > a.meta.runMs ? b : a));
  out.push(
    paragraph(
      text(`Every number and figure above comes from the stored results of ${stored.length === cells.length ? `all ${plural(cells.length, 'cell')}` : `${stored.length} of the ${cells.length} cells`}`),
      text(missing.length === 0 ? '' : missing.length <= 5 ? ` (no result: ${missing.join(', ')})` : ` (${missing.length} have no stored result yet; see the table)`),
      text(`, computed at profile ${profiles.join(', ')} with document seed ${seed}. Total compute: `),
      strong(duration(total)),
      text(` (the sum of the cells' run times); the longest cell, `),
      code(longest.id),
      text(`, took ${duration(longest.meta.runMs)}.`),
    ),
  );

  // Machines and Node, grouped; cells without a recorded environment said apart.
  const machines = groupBy(stored, (r) => (r.meta.environment ? `${r.meta.environment.cpu}, ${plural(r.meta.environment.cores, 'core')}, ${r.meta.environment.os}, Node ${r.meta.environment.node}` : undefined));
  const machineText: PhrasingContent[] = [strong('Machine. ')];
  machines.forEach(([machine, ids], i) => {
    if (i > 0) machineText.push(text('; '));
    machineText.push(text(machine), ...cellsSuffix(ids, stored.length));
  });
  const unrecorded = stored.filter((r) => !r.meta.environment).map((r) => r.id);
  if (machines.length === 0) machineText.push(text('not recorded (these results were stored before results recorded their machine).'));
  else machineText.push(text(unrecorded.length > 0 ? `; not recorded for ${unrecorded.join(', ')} (stored before results recorded their machine).` : '.'));
  out.push(paragraph(...machineText));

  const commits = groupBy(stored, (r) => (r.meta.environment?.git ? `${r.meta.environment.git.commit.slice(0, 12)}${r.meta.environment.git.dirty ? ' (with uncommitted changes)' : ''}` : undefined));
  if (commits.length > 0) {
    const codeText: PhrasingContent[] = [strong('Code. '), text('Git commit ')];
    commits.forEach(([commit, ids], i) => {
      if (i > 0) codeText.push(text('; '));
      const [sha, ...rest] = commit.split(' ');
      codeText.push(code(sha!), text(rest.length > 0 ? ` ${rest.join(' ')}` : ''), ...cellsSuffix(ids, stored.length));
    });
    codeText.push(text(' when the cells ran.'));
    out.push(paragraph(...codeText));
  }

  const packages = new Map<string, Map<string, string[]>>();
  for (const result of stored) {
    for (const [name, version] of Object.entries(result.meta.versions)) {
      const versions = packages.get(name) ?? new Map<string, string[]>();
      versions.set(version, [...(versions.get(version) ?? []), result.id]);
      packages.set(name, versions);
    }
  }
  const packageText: PhrasingContent[] = [strong('Packages'), text(' the cells import or read at run time: ')];
  const names = [...packages.keys()].sort();
  if (names.length === 0) packageText.push(text('none.'));
  names.forEach((name, i) => {
    if (i > 0) packageText.push(text(', '));
    const versions = [...packages.get(name)!];
    packageText.push(code(name), text(' '));
    if (versions.length === 1) packageText.push(text(versions[0]![0]));
    else packageText.push(text(versions.map(([version, ids]) => `${version} (${ids.join(', ')})`).join(' / ')));
    if (i === names.length - 1) packageText.push(text('.'));
  });
  out.push(paragraph(...packageText));

  const row = (values: string[]): Table['children'][number] => ({
    type: 'tableRow',
    children: values.map((value): TableCell => ({ type: 'tableCell', children: [text(value)] })),
  });
  const table: Table = {
    type: 'table',
    align: ['left', 'left', 'right', 'right', 'left'],
    children: [
      row(['cell', 'backend', 'seed', 'run time', 'ran at (UTC)']),
      ...cells.map((id) => {
        const result = stored.find((r) => r.id === id);
        if (!result) return row([id, '—', '—', '—', 'no stored result']);
        return row([id, result.meta.backend ?? '—', String(result.meta.seed), duration(result.meta.runMs), when(result.meta.createdAt)]);
      }),
    ],
  };
  out.push(table);

  const command = `npm ci && npm run report -- --verify${profiles.length === 1 && profiles[0] !== 'full' ? ` --profile ${profiles[0]}` : ''}`;
  out.push(
    paragraph(
      strong('To reproduce: '),
      code(command),
      text(
        ' re-runs every cell and compares each export and figure with the stored result bit for bit' +
          (measured === true ? ', except the wall-clock measurements the front matter names (compared for presence and type only).' : '.'),
      ),
    ),
  );
  return out;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** Results grouped by a label (in order of first appearance); results without a label are left out. */
function groupBy<T extends { id: string }>(items: T[], label: (item: T) => string | undefined): [string, string[]][] {
  const groups = new Map<string, string[]>();
  for (const item of items) {
    const key = label(item);
    if (key === undefined) continue;
    groups.set(key, [...(groups.get(key) ?? []), item.id]);
  }
  return [...groups];
}

/** " (cells a, b)" unless the group holds every stored cell. */
function cellsSuffix(ids: string[], all: number): PhrasingContent[] {
  if (ids.length === all) return [];
  return [text(` (${ids.length === 1 ? 'cell' : 'cells'} ${ids.join(', ')})`)];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** 850 ms, 12.3 s, 4 min 05 s, 1 h 23 min. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, '0')} s`;
  const minutes = Math.round(whole / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** ISO date → "2026-11-21 13:04". */
function when(iso: string): string {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return match ? `${match[1]} ${match[2]}` : iso;
}
