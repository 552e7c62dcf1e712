import { describe, expect, it } from 'vitest';
import * as runtime from '../../src/engine/runtime.ts';
import type { RuntimeContext } from '../../src/engine/runtime.ts';

const context = (globalThis as { [runtime.RUNTIME_CONTEXT]?: RuntimeContext })[runtime.RUNTIME_CONTEXT]!;

describe('report:runtime outside a runner', () => {
  it('imports with a default context', () => {
    expect(runtime.profile).toBe('full');
    expect(runtime.seed).toBe(0);
    expect(runtime.cellId).toBe('none');
    expect(context.outputs).toEqual([]);
  });

  it('picks the active profile value and names a missing one', () => {
    expect(runtime.byProfile({ full: 50, quick: 2 })).toBe(50);
    expect(() => runtime.byProfile({ quick: 2 } as unknown as { full: number; quick: number })).toThrow('byProfile: no value for profile "full"');
  });

  it('gives deterministic, distinct random streams', () => {
    const a = runtime.random();
    const b = runtime.random();
    const xs = [a(), a(), a()];
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(b()).not.toBe(xs[0]);
    const mean = Array.from({ length: 10_000 }, a).reduce((s, x) => s + x, 0) / 10_000;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
  });

  it('records figures, tables and meta and validates names', () => {
    runtime.figure('loss-curve', '<svg xmlns="http://www.w3.org/2000/svg"></svg>', { caption: 'Loss.' });
    runtime.figure('png-one', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0]));
    runtime.table('scores', [{ a: 1 }, { a: 2, b: true }]);
    runtime.table('grid', { columns: ['x', 'y'], rows: [[1, undefined]] });
    runtime.meta({ backend: 'cpu' });
    expect(context.outputs).toEqual([
      { kind: 'figure', name: 'loss-curve', ext: 'svg', data: new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"></svg>'), caption: 'Loss.' },
      { kind: 'figure', name: 'png-one', ext: 'png', data: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0]) },
      { kind: 'table', name: 'scores', columns: ['a', 'b'], rows: [[1, null], [2, true]] },
      { kind: 'table', name: 'grid', columns: ['x', 'y'], rows: [[1, null]] },
    ]);
    expect(context.meta).toEqual({ backend: 'cpu' });
    expect(() => runtime.figure('Bad Name', '<svg></svg>')).toThrow('lowercase letters, digits and dashes');
    expect(() => runtime.figure('loss-curve', '<svg></svg>')).toThrow('used twice');
    expect(() => runtime.figure('notpng', new Uint8Array([1, 2, 3, 4]))).toThrow('PNG');
    expect(() => runtime.table('bad', { columns: ['a'], rows: [[{}]] })).toThrow('column "a" is a object');
    expect(() => runtime.progress({ step: 1, total: 2 })).not.toThrow();
  });
});
