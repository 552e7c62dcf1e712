import { describe, expect, it } from 'vitest';
import { modeCoverage, ringCentres, ringOfGaussians } from '../../src/ml/data/toy.ts';
import { Rng } from '../../src/ml/random.ts';

describe('ring of Gaussians (toy.ts)', () => {
  it('puts 8 centres on the circle of radius 2 and samples cover all of them', () => {
    const centres = ringCentres();
    for (let k = 0; k < 8; k++) expect(Math.hypot(centres[2 * k]!, centres[2 * k + 1]!)).toBeCloseTo(2, 5);
    const coverage = modeCoverage(ringOfGaussians(4000, new Rng(1)));
    expect(coverage.modesCovered).toBe(8);
    expect(coverage.highQuality).toBeGreaterThan(0.98); // 3 sd in 2-D holds 98.9 %
    for (const c of coverage.perMode) expect(c).toBeGreaterThan(400);
  });

  it('counts a collapsed sample set as one mode, and points between modes as low quality', () => {
    const collapsed = new Float32Array(200).map((_, i) => (i % 2 === 0 ? 2 : 0)); // all at mode 0
    expect(modeCoverage(collapsed)).toMatchObject({ modesCovered: 1, highQuality: 1 });
    const between = new Float32Array(200).fill(0); // the centre of the ring
    expect(modeCoverage(between)).toMatchObject({ modesCovered: 0, highQuality: 0 });
  });
});
