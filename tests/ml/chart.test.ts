import { describe, expect, it } from 'vitest';
import { bandChart, barChart, encodedLineChart, lineChart, scatterChart, scatterPanels } from '../../src/ml/plots/chart.ts';

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
    // The values are drawn: the same chart with other values is another picture.
    const zeros = await barChart({
      bars: [
        { name: 'VAE', value: 0, group: 'train' },
        { name: 'VAE', value: 0, group: 'test' },
        { name: 'RBM', value: 0, group: 'train' },
      ],
      yTitle: 'FD',
      groupTitle: 'split',
    });
    expect(grouped).not.toBe(zeros);
  });

  it('band chart: one panel per quantity, a band for each sd, reference crosses, one shared legend', async () => {
    const options = {
      xTitle: 'epoch',
      columns: 2,
      panels: [
        { title: 'losses', yTitle: 'loss', series: [{ name: 'L_D', x: [1, 2, 3], y: [0.7, 0.5, 0.4], sd: [0.1, 0.1, 0.1] }, { name: 'L_G', x: [1, 2, 3], y: [0.8, 1.5, 2] }],
          references: [{ name: 'course', x: 1, y: 0.78 }] },
        { title: 'quality', yTitle: 'FD', logY: true, series: [{ name: 'L_D', x: [1, 2, 3], y: [50, 0, 10], sd: [5, 1, 60] }] },
      ],
    };
    const svg = await bandChart(options);
    expectWellFormed(svg);
    expect(svg).toBe(await bandChart(options));
    expect(svg).toContain('losses');
    expect(svg).toContain('quality');
    // One legend: each series name once.
    expect(svg.match(/>L_G<\/text>/g)).toHaveLength(1);
    // The band of L_D with sd 0.1 reaches 0.8 at epoch 1: its area path exists; L_G has none.
    expect(svg).toContain('class="mark-area role-mark');
    // The course's value is a symbol layer of its own (after the line's points).
    expect(svg.match(/class="mark-symbol role-mark/g)!.length).toBeGreaterThanOrEqual(2);
    await expect(bandChart({ xTitle: 'x', panels: [{ yTitle: 'y', series: [{ name: 'a', x: [1, 2], y: [1] }] }] })).rejects.toThrow(/2 x and 1 y/);
  });

  it('scatter panels share one legend and fixed axes', async () => {
    const panel = (k: number) => ({ title: `step ${k}`, points: [{ x: 0, y: k, label: 'data' }, { x: k, y: 0, label: 'generated' }] });
    const svg = await scatterPanels({ panels: [panel(1), panel(2), panel(3)], xTitle: 'x1', yTitle: 'x2', colorTitle: 'set', xDomain: [-3, 3], yDomain: [-3, 3] });
    expectWellFormed(svg);
    for (const k of [1, 2, 3]) expect(svg).toContain(`step ${k}`);
    expect(svg.match(/>generated<\/text>/g)).toHaveLength(1);
  });

  it('bar chart with sd draws one error bar per bar', async () => {
    const bars = [{ name: 'GAN', value: 10, sd: 2 }, { name: 'DCGAN', value: 3, sd: 0.5 }];
    const withErrors = await barChart({ bars, yTitle: 'FD' });
    const without = await barChart({ bars: bars.map(({ name, value }) => ({ name, value })), yTitle: 'FD' });
    expectWellFormed(withErrors);
    // Error bars are marks of their own (a rule and two ticks per bar); the plain chart has only bars.
    expect(withErrors).toMatch(/class="mark-rule role-mark [^"]*"/);
    expect(without).not.toMatch(/class="mark-rule role-mark/);
  });

  it('encodedLineChart: colour and dash encode two variables, each with its own legend, error bars, deterministic', async () => {
    const points = [1, 2, 3].flatMap((x) =>
      ['top', 'bottom'].flatMap((colour) => ['blank', 'inpainted'].map((dash) => ({ x, y: x * (colour === 'top' ? 1 : 2) + (dash === 'blank' ? 0 : 0.5), lo: x - 0.1, hi: x + 0.1, colour, dash })))
    );
    const options = { points, xTitle: 'rows removed', yTitle: 'accuracy', colourTitle: 'where', dashTitle: 'input' };
    const svg = await encodedLineChart(options);
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['rows removed', 'accuracy', 'where', 'input', 'top', 'bottom', 'blank', 'inpainted']) expect(svg).toContain(`>${text}<`);
    expect(svg).toContain('stroke-dasharray="6,4"');
    expect(await encodedLineChart(options)).toBe(svg);
    const panels = await encodedLineChart({ ...options, panel: (p) => (p.x < 2 ? 'left' : 'right'), panelOrder: ['left', 'right'] });
    for (const text of ['left', 'right']) expect(panels).toContain(`>${text}<`);
  });
});
