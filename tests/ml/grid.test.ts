import { describe, expect, it } from 'vitest';
import { loadImage } from '@napi-rs/canvas';
import { imageGrid, weightGrid } from '../../src/ml/plots/grid.ts';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** `n` 28×28 images, image i filled with the value i / (n - 1). */
function ramps(n: number): Float32Array {
  const images = new Float32Array(n * 784);
  for (let i = 0; i < n; i++) images.fill(n === 1 ? 1 : i / (n - 1), i * 784, (i + 1) * 784);
  return images;
}

async function pixelAt(png: Uint8Array, x: number, y: number): Promise<number[]> {
  const { createCanvas } = await import('@napi-rs/canvas');
  const image = await loadImage(Buffer.from(png));
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  return [...ctx.getImageData(x, y, 1, 1).data];
}

describe('imageGrid', () => {
  it('writes a PNG whose size follows rows, cols, scale and gap', async () => {
    const png = imageGrid(ramps(6), { cols: 3, scale: 2, gap: 4 });
    expect(png).toBeInstanceOf(Uint8Array);
    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    const image = await loadImage(Buffer.from(png));
    expect(image.width).toBe(3 * (56 + 4) + 4);
    expect(image.height).toBe(2 * (56 + 4) + 4);
  });

  it('draws ink on paper: 0 is white, 1 is black, NaN is marked', async () => {
    const images = ramps(2);
    images[1 * 784 + 0] = NaN; // top-left pixel of the second tile
    const png = imageGrid(images, { cols: 2, scale: 1, gap: 4 });
    expect(await pixelAt(png, 4 + 10, 4 + 10)).toEqual([255, 255, 255, 255]);
    expect(await pixelAt(png, 4 + 32 + 10, 4 + 10)).toEqual([0, 0, 0, 255]);
    const [r, g, b] = await pixelAt(png, 4 + 32, 4);
    expect(r! > 200 && g! > 100 && b! < 50).toBe(true);
  });

  it('adds room for labels and row labels', async () => {
    const plain = await loadImage(Buffer.from(imageGrid(ramps(4), { cols: 2 })));
    const labelled = await loadImage(
      Buffer.from(imageGrid(ramps(4), { cols: 2, labels: ['a', 'b', 'c', 'd'], rowLabels: ['masked', 'inpainted'] })),
    );
    expect(labelled.width).toBeGreaterThan(plain.width);
    expect(labelled.height).toBeGreaterThan(plain.height);
  });

  it('normalises filters per tile with a diverging colormap', async () => {
    const filters = new Float32Array(2 * 784);
    for (let i = 0; i < 784; i++) {
      filters[i] = i < 392 ? -0.01 : 0.01; // tiny weights: need per-tile normalisation
      filters[784 + i] = i < 392 ? -5 : 5;
    }
    const png = imageGrid(filters, { cols: 2, scale: 1, gap: 4, colormap: 'diverging', normalizeEach: true });
    // Top half negative → saturated blue in both tiles, bottom half → saturated red.
    expect(await pixelAt(png, 4 + 5, 4 + 2)).toEqual(await pixelAt(png, 4 + 32 + 5, 4 + 2));
    const [r, , b] = await pixelAt(png, 4 + 5, 4 + 2);
    expect(b!).toBeGreaterThan(r!);
    const [r2, , b2] = await pixelAt(png, 4 + 5, 4 + 25);
    expect(r2!).toBeGreaterThan(b2!);
  });

  it('is deterministic and rejects inconsistent input', () => {
    const a = imageGrid(ramps(3), { cols: 3, labels: ['1', '2', '3'] });
    const b = imageGrid(ramps(3), { cols: 3, labels: ['1', '2', '3'] });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(() => imageGrid(new Float32Array(100), { cols: 1 })).toThrow(/multiple of width·height/);
    expect(() => imageGrid(ramps(5), { cols: 2, rows: 2 })).toThrow(/cannot hold/);
  });
});

describe('weightGrid', () => {
  it('draws the tiles on one symmetric scale with a labelled colour bar', () => {
    const filters = Float32Array.from({ length: 4 * 784 }, (_, k) => (k % 784 === 0 ? -0.5 : k % 784 === 1 ? 0.25 : 0));
    const svg = weightGrid(filters, { cols: 2, unit: 'weight' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('data:image/png;base64,');
    expect(svg).toContain('>0.50<');
    expect(svg).toContain('>-0.50<');
    expect(svg).toContain('weight');
  });
});
