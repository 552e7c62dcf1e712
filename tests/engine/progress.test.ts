import { describe, expect, it } from 'vitest';
import { formatDuration, progressDisplay } from '../../src/engine/progress.ts';

function recorder(isTTY: boolean) {
  const written: string[] = [];
  const clock = { ms: 0 };
  const display = progressDisplay({ write: (s) => void written.push(s), isTTY, columns: 120 }, () => clock.ms);
  return { written, clock, display };
}

describe('progressDisplay', () => {
  it('prints plain lines without a TTY, at most one progress line per cell every 10 s', () => {
    const { written, clock, display } = recorder(false);
    display.onEvent({ id: 'prep', state: 'fresh' });
    display.onEvent({ id: 'train', state: 'running' });
    for (let step = 1; step <= 50; step++) {
      clock.ms = step * 1000;
      display.onEvent({ id: 'train', state: 'running', progress: { id: 'train', step, total: 100, label: 'epoch', metrics: { loss: 1 / step } } });
    }
    display.onEvent({ id: 'train', state: 'ran', ms: 61_000 });
    display.onEvent({ id: 'eval', state: 'failed', failure: { id: 'eval', kind: 'timeout', message: 'did not finish\nmore' } });
    display.onEvent({ id: 'plot', state: 'skipped', failure: { id: 'plot', kind: 'skipped', message: 'skipped: the cell it imports, "eval", timed out' } });
    display.done({ ran: 1, fresh: 1, failed: 1, skipped: 1, ms: 62_000 });
    const text = written.join('');
    const progressLines = text.split('\n').filter((l) => l.startsWith('  train'));
    expect(progressLines).toHaveLength(5);
    expect(progressLines[0]).toBe('  train  epoch 10/100  loss 0.100  ETA 1m30s');
    expect(text).toContain('· prep fresh\n');
    expect(text).toContain('▶ train running\n');
    expect(text).toContain('✓ train ran in 1m01s\n');
    expect(text).toContain('✗ eval timed out: did not finish\n');
    expect(text).toContain('- plot skipped: the cell it imports, "eval", timed out\n');
    expect(text.endsWith('ran 1, fresh 1, failed 1, skipped 1 in 1m02s\n')).toBe(true);
    expect(text).not.toContain('\u001b[');
  });

  it('redraws one live line per running cell on a TTY', () => {
    const { written, clock, display } = recorder(true);
    display.onEvent({ id: 'a', state: 'running' });
    display.onEvent({ id: 'b', state: 'running' });
    clock.ms = 1000;
    display.onEvent({ id: 'a', state: 'running', progress: { id: 'a', step: 1, total: 4, label: 'epoch' } });
    clock.ms = 3000;
    display.onEvent({ id: 'a', state: 'running', progress: { id: 'a', step: 3, total: 4, label: 'epoch', metrics: { acc: 0.91234 } } });
    const frame = written.at(-1)!;
    expect(frame).toContain('⠿ a  epoch 3/4  acc 0.912  ETA 1.0s');
    expect(frame).toContain('⠿ b  running 3.0s');
    display.onEvent({ id: 'a', state: 'ran', ms: 3000 });
    expect(written.join('')).toContain('✓ a ran in 3.0s');
    display.done({ ran: 1, fresh: 0, failed: 0, skipped: 0, ms: 3000 });
    expect(written.at(-1)).toBe('ran 1, fresh 0, failed 0, skipped 0 in 3.0s\n');
  });

  it('shows a batch job\'s Slurm status: queued with why, running where; time counted from the start', () => {
    const plain = recorder(false);
    plain.display.onEvent({ id: 'train', state: 'stale', status: 'pending · job 12' });
    plain.display.onEvent({ id: 'train', state: 'running' }); // the scheduler waits on the job: no line of its own
    plain.clock.ms = 2000;
    plain.display.onEvent({ id: 'train', state: 'stale', status: 'pending (Priority) · job 12' });
    plain.clock.ms = 65_000;
    plain.display.onEvent({ id: 'train', state: 'running', status: 'running on node7 · job 12' });
    plain.clock.ms = 95_000;
    plain.display.onEvent({ id: 'train', state: 'ran', ms: 95_000 });
    expect(plain.written.join('')).toBe(
      ['… train pending · job 12', '… train pending (Priority) · job 12', '▶ train running on node7 · job 12', '✓ train ran in 30.0s after 1m05s queued', ''].join('\n'),
    );

    const tty = recorder(true);
    tty.display.onEvent({ id: 'b', state: 'stale', status: 'pending (after a) · job 13' });
    tty.display.onEvent({ id: 'a', state: 'running', status: 'running on node7 · job 12' });
    tty.clock.ms = 4000;
    tty.display.onEvent({ id: 'a', state: 'running', progress: { id: 'a', step: 2, total: 10, label: 'epoch' } });
    const frame = tty.written.at(-1)!;
    expect(frame).toContain('⠿ b  pending (after a) · job 13  4.0s');
    // Seen running a poll late (or with its end): timed from when the job says it started.
    tty.display.onEvent({ id: 'c', state: 'running', status: 'running on node8 · job 14', since: 1000 });
    tty.display.onEvent({ id: 'c', state: 'ran', ms: 9000 });
    expect(tty.written.join('')).toContain('✓ c ran in 3.0s');
    expect(frame).toContain('⠿ a  epoch 2/10  · running on node7 · job 12');
  });

  it('formats durations', () => {
    expect([formatDuration(850), formatDuration(12_345), formatDuration(192_000), formatDuration(3_780_000)]).toEqual(['850ms', '12.3s', '3m12s', '1h03m']);
  });
});
