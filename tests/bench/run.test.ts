import { describe, expect, it } from 'vitest';
import { compare, resultsBaseName, timeSteps, toMarkdown, type BenchReport } from '../../bench/run.ts';

describe('bench/run.ts', () => {
  it('timeSteps takes medians and sees a busy step as one full core', () => {
    const busy = () => {
      const end = performance.now() + 2;
      while (performance.now() < end) {
        // spin: CPU time ≈ wall time
      }
    };
    const t = timeSteps(busy, { warmup: 1, steps: 3, repeats: 5 });
    expect(t.samples).toHaveLength(5);
    expect(t.steps).toBe(15);
    expect(t.msPerStep).toBeGreaterThanOrEqual(2);
    expect(t.minMsPerStep).toBeLessThanOrEqual(t.msPerStep);
    expect(t.cpuMsPerStep).toBeGreaterThan(0);
    expect(t.cpuShare).toBeGreaterThan(0.3); // ~1 when idle; a loaded test machine gives less
    // The process's CPU time counts all its threads: the garbage collector's and the test
    // runner's own can add to the spinning one's (1.34 seen in a loaded run), never a second core's worth.
    expect(t.cpuShare).toBeLessThan(2);
  });

  it('compare: time ratios are tfjs / PyTorch, throughput ratios PyTorch / tfjs, on wall and CPU time', () => {
    const epoch = compare(
      { workload: 'gan', unit: 's/epoch', tfjs: 30, tfjsCpu: 20, target: 3.5, note: '' },
      { name: 'gan', msPerStep: 1, msPerEpoch: 10_000, cpuMsPerEpoch: 8_000, cpuShare: 1 },
      { name: 'gan', msPerStep: 1, msPerEpoch: 5_000 },
    );
    expect(epoch.torch1).toBe(10);
    expect(epoch.ratio1).toBe(3);
    expect(epoch.ratioDefault).toBe(6);
    expect(epoch.cpuRatio1).toBe(2.5);
    const mm = compare(
      { workload: 'mm', unit: 'GFLOP/s', tfjs: 25, tfjsCpu: 20, note: '' },
      { name: 'matmul', msPerStep: 1, gflops: 100, cpuGflops: 100 },
    );
    expect(mm.ratio1).toBe(4);
    expect(mm.cpuRatio1).toBe(5);
    expect(mm.ratioDefault).toBeUndefined();
  });

  it('toMarkdown states the load, the verdicts and what was not measured', () => {
    const report: BenchReport = {
      date: '2026-11-21T12:00:00.000Z',
      backend: 'wasm',
      machine: { cpus: 2, cpuModel: 'Test CPU', loadStart: 4.2, loadEnd: 3.9 },
      versions: { tfjs: '4.22.0', torch: '1.13', sklearn: '1.2', torchThreads: 2, torchDefaultThreads: 1 },
      comparison: [
        compare({ workload: 'MLP GAN', unit: 's/epoch', tfjs: 30, tfjsCpu: 20, target: 3.5, note: 'n' }, { name: 'gan', msPerStep: 1, msPerEpoch: 10_000, cpuMsPerEpoch: 5_000 }),
      ],
      extra: [{ section: 'engine', name: 'no-change rebuild', ms: 120 }],
      tfjsTimings: {},
      torch: { one: {}, default: {} },
      failures: ['RBM: bench/rbm.ts not found'],
    };
    const md = toMarkdown(report);
    expect(md).toContain('load average (1 min) 4.2 at start, 3.9 at end — a shared, loaded machine');
    expect(md).toContain('| MLP GAN | s/epoch | 30.00 | 10.00 | 3.0× |');
    expect(md).toContain('≤ 3.5×: met (CPU time: missed)');
    expect(md).toContain('### Engine (bench/engine.ts)');
    expect(md).toContain('- RBM: bench/rbm.ts not found');
  });

  it('keeps bench/results.md for full wasm runs only', () => {
    expect(resultsBaseName({ backend: 'wasm', quick: false, torch: true })).toBe('results');
    expect(resultsBaseName({ backend: 'cpu', quick: false, torch: true })).toBe('results-cpu');
    expect(resultsBaseName({ backend: 'wasm', quick: true, torch: true })).toBe('results-partial');
    expect(resultsBaseName({ backend: 'wasm', quick: false, torch: false })).toBe('results-partial');
    expect(resultsBaseName({ backend: 'cpu', quick: false, torch: true, only: new Set(['gan']) })).toBe('results-cpu-partial');
    expect(resultsBaseName({ backend: 'wasm', quick: false, torch: true, torchOneThread: true })).toBe('results-partial');
  });
});
