/**
 * Cluster resources as cell options and front matter (resources.ts, parse.ts): Slurm's own
 * syntax, `bad-option`/`bad-frontmatter` otherwise, time/mem as timeout/memory, and keys
 * that do not move when resources are added.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { keyCells } from '../../src/engine/key.ts';
import { parseDocument } from '../../src/engine/parse.ts';
import { keyedOptions, parseMem, parseSlurmFlags, parseTime } from '../../src/engine/resources.ts';

const parse = (value: string) => parseDocument(new VFile({ path: 'doc.md', value }));
const cellDoc = (options: string) => `# D\n\n\`\`\`ts run id=c ${options}\nexport const c = 1;\n\`\`\`\n`;
const problems = (value: string) => parse(value).file.messages.map((m) => `${m.line}:${m.column} ${m.ruleId} ${m.reason}`);

describe('resource values in Slurm\'s syntax', () => {
  it('reads time limits as Slurm does (a bare number is minutes)', () => {
    expect(parseTime('90')).toEqual({ value: 5400 });
    expect(parseTime('0:30')).toEqual({ value: 30 });
    expect(parseTime('1:30:00')).toEqual({ value: 5400 });
    expect(parseTime('2-12')).toEqual({ value: 2 * 86400 + 12 * 3600 });
    expect(parseTime('1-0:30')).toEqual({ value: 86400 + 1800 });
    expect(parseTime('1-00:00:05')).toEqual({ value: 86405 });
    for (const bad of ['', '0', '1h', '1:2:3:4', '-5', '1.5', 'inf']) expect(parseTime(bad)).toHaveProperty('problem');
  });

  it('reads memory sizes as Slurm does (no unit is MiB)', () => {
    expect(parseMem('512')).toEqual({ value: 512 });
    expect(parseMem('4G')).toEqual({ value: 4096 });
    expect(parseMem('2048K')).toEqual({ value: 2 });
    expect(parseMem('1T')).toEqual({ value: 1024 * 1024 });
    for (const bad of ['', '0', '4GiB', '1.5G', '-1', 'lots']) expect(parseMem(bad)).toHaveProperty('problem');
  });
});

describe('resource cell options', () => {
  it('accepts cpus, mem, gpus, time and partition; time and mem set the local timeout and memory', () => {
    const doc = parse(cellDoc('cpus=4 mem=2G gpus=a100:2 time=1:00:00 partition=gpu,gpu-long'));
    expect(doc.file.messages).toEqual([]);
    expect(doc.cells[0]!.options).toEqual({
      echo: true,
      timeout: 3600,
      memory: 2048,
      resources: { cpus: 4, memMiB: 2048, gpus: 'a100:2', timeSeconds: 3600, partition: 'gpu,gpu-long' },
    });
  });

  it('refuses bad values as bad-option at the fence, and the cell does not run', () => {
    const value = cellDoc('cpus=0 mem=4GiB gpus=two time=soon partition=a/b');
    expect(problems(value)).toEqual([
      '3:1 bad-option cpus=0: expected a whole number of CPUs ≥ 1',
      '3:1 bad-option mem=4GiB: expected a size such as 512, 512M, 4G (a whole number; no unit means MiB, as in Slurm)',
      '3:1 bad-option gpus=two: expected a count ≥ 1 or type:count, e.g. gpus=1 or gpus=a100:2',
      '3:1 bad-option time=soon: expected a time limit as Slurm writes it: minutes (90), M:S, H:M:S (1:30:00) or D-H, D-H:M, D-H:M:S (2-12)',
      '3:1 bad-option partition=a/b: expected a partition name (letters, digits, _ . -) or a comma-separated list of them',
    ]);
    expect(parse(value).rejected.get('c')).toBe('its options were rejected');
  });

  it('time and timeout (mem and memory) are one limit: both may be given only when they agree', () => {
    expect(problems(cellDoc('time=2 timeout=120 mem=1G memory=1024'))).toEqual([]);
    expect(problems(cellDoc('time=2 timeout=60'))).toEqual([
      '3:1 bad-option time=2 (120 s) and timeout=60 disagree; they are the same limit, give one of them',
    ]);
    expect(problems(cellDoc('mem=1G memory=512'))).toEqual([
      '3:1 bad-option mem=1G (1024 MiB) and memory=512 disagree; they are the same limit, give one of them',
    ]);
  });

  it('resources are not in the key: a cell keeps its key when it gains them, and cells without them keep their option string', async () => {
    expect(keyedOptions('id=c echo=false  timeout=60')).toBe('id=c echo=false  timeout=60');
    expect(keyedOptions('id=c cpus=4 echo=false partition=gpu time=90 mem=1G gpus=1')).toBe('id=c echo=false');
    const plain = parse(cellDoc('echo=false'));
    const placed = parse(cellDoc('echo=false cpus=8 partition=gpu gpus=1'));
    expect(plain.cells[0]!.rawOptions).toBe('id=c echo=false');
    const root = resolve(import.meta.dirname, '../..');
    const context = { docPath: resolve(root, 'tests/fixtures/exec-run/report.md'), projectRoot: root, profile: 'quick', seed: 1, runtimePath: resolve(root, 'src/engine/runtime.ts') };
    const a = await keyCells(plain.cells, ['c'], context);
    const b = await keyCells(placed.cells, ['c'], context);
    expect(b.get('c')!.key).toBe(a.get('c')!.key);
    // timeout= stays in the key, as it always was (changing that would re-key stored results).
    const timed = await keyCells(parse(cellDoc('echo=false timeout=60')).cells, ['c'], context);
    expect(timed.get('c')!.key).not.toBe(a.get('c')!.key);
  });
});

describe('the front matter\'s slurm: section and --slurm flags', () => {
  it('reads defaults, numbers included', () => {
    const doc = parse('---\nslurm:\n  partition: gpu\n  account: my-lab\n  qos: short\n  cpus: 4\n  mem: 16G\n  time: 90\n  gpus: 1\n  constraint: a100|h100\n  extra: ["--mail-type=END"]\n---\n\n# D\n');
    expect(doc.file.messages).toEqual([]);
    expect(doc.frontMatter.slurm).toEqual({
      partition: 'gpu',
      account: 'my-lab',
      qos: 'short',
      cpus: 4,
      memMiB: 16384,
      timeSeconds: 5400,
      gpus: '1',
      constraint: 'a100|h100',
      extra: ['--mail-type=END'],
    });
  });

  it('refuses unknown keys and bad values as bad-frontmatter (no cell runs)', () => {
    expect(problems('---\nslurm:\n  partion: gpu\n  mem: lots\n---\n\n# D\n')).toEqual([
      '1:1 bad-frontmatter front matter "slurm": unknown key "partion"; known keys: partition, account, qos, constraint, cpus, mem, gpus, time, extra',
      '1:1 bad-frontmatter front matter "slurm": mem=lots: expected a size such as 512, 512M, 4G (a whole number; no unit means MiB, as in Slurm)',
    ]);
    expect(problems('---\nslurm: gpu\n---\n')).toEqual(['1:1 bad-frontmatter front matter "slurm" must be a mapping, e.g. slurm: { partition: gpu, account: my-lab }']);
  });

  it('reads --slurm key=value flags with the same validators', () => {
    expect(parseSlurmFlags(['partition=gpu', 'time=2-0', 'extra=--exclusive --mail-type=END'])).toEqual({
      partition: 'gpu',
      timeSeconds: 172800,
      extra: ['--exclusive', '--mail-type=END'],
    });
    expect(() => parseSlurmFlags(['gpu'])).toThrow('--slurm gpu: expected key=value');
    expect(() => parseSlurmFlags(['cpus=many'])).toThrow('--slurm cpus=many: expected a whole number of CPUs ≥ 1');
  });
});
