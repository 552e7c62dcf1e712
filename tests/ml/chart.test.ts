import { describe, expect, it } from 'vitest';
import { barChart, lineChart, scatterChart } from '../../src/ml/plots/chart.ts';

/** Minimal well-formedness: one root <svg>, every tag closed in order. */
function expectWellFormed(svg: string): void {
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (closing) expect(stack.pop()).toBe(name);
    else stack.push(name!);
  }
  expect(stack).toEqual([]);
}

const epochs = [1, 2, 3, 4, 5];
const series = [
  { name: 'train', x: epochs, y: [1, 0.5, 0.3, 0.2, 0.15] },
  { name: 'test', x: epochs, y: [1.1, 0.6, 0.4, NaN, 0.3] },
];

describe('charts', () => {
  it('line chart: well-formed, themed, no background, deterministic', async () => {
    const a = await lineChart({ series, xTitle: 'epoch', yTitle: 'loss', logY: true, title: 'Loss' });
    const b = await lineChart({ series, xTitle: 'epoch', yTitle: 'loss', logY: true, title: 'Loss' });
    expectWellFormed(a);
    expect(a).toBe(b);
    expect(a).toContain('epoch');
    expect(a).toContain('train');
    expect(a).not.toMatch(/class="background"[^>]*fill="(white|#fff|#ffffff)"/i);
    for (const m of a.matchAll(/font-size="(\d+(?:\.\d+)?)px"/g)) expect(Number(m[1])).toBeGreaterThanOrEqual(11);
  });

  it('line chart rejects mismatched series', async () => {
    await expect(lineChart({ series: [{ name: 'a', x: [1, 2], y: [1] }], xTitle: 'x', yTitle: 'y' })).rejects.toThrow(
      /2 x and 1 y/,
    );
  });

  it('scatter chart colours by label with a numeric legend order', async () => {
    const points = Array.from({ length: 40 }, (_, i) => ({ x: Math.cos(i), y: Math.sin(i), label: (i * 7) % 10 }));
    const svg = await scatterChart({ points, xTitle: 'z1', yTitle: 'z2', colorTitle: 'digit' });
    expectWellFormed(svg);
    expect(svg).toBe(await scatterChart({ points, xTitle: 'z1', yTitle: 'z2', colorTitle: 'digit' }));
    const legend = [...svg.matchAll(/>(\d)<\/text>/g)].map((m) => m[1]);
    expect(legend.filter((d, i) => legend.indexOf(d) === i).join('')).toContain('0123456789');
  });

  it('bar chart, plain and grouped', async () => {
    const plain = await barChart({ bars: [{ name: 'VAE', value: 3 }, { name: 'RBM', value: 5 }], yTitle: 'FD' });
    expectWellFormed(plain);
    const grouped = await barChart({
      bars: [
        { name: 'VAE', value: 3, group: 'train' },
        { name: 'VAE', value: 4, group: 'test' },
        { name: 'RBM', value: 5, group: 'train' },
      ],
      yTitle: 'FD',
      groupTitle: 'split',
    });
    expectWellFormed(grouped);
    expect(grouped).toContain('split');
  });
});
