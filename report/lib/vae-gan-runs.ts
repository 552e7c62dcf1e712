/**
 * Section 4.3 Q4: the VAEs whose decoders are section 4.2's generators, run by
 * vae-runs.ts's `trainVaeRun`. A file of its own so that only these cells bundle gan.ts and
 * dcgan.ts (through src/ml/models/vae-decoders.ts): an edit to 4.2's models re-runs these
 * six cells, not the whole section.
 */
import type { StoredWeight } from '../../src/ml/models/classifier.ts';
import { createGanDecoderVae } from '../../src/ml/models/vae-decoders.ts';
import { trainVaeRun, type VaeRun, type VaeRunConfig } from './vae-runs.ts';

/** Latent size of 4.2's GANs. */
export const GAN_LATENT = 10;

/**
 * Run `seedIndex` of the VAE with 4.2's MLP generator ('mlp-gan': batch 512, Adam 1e-3 β (0.5,
 * 0.999) as 4.2's GAN) or DCGAN generator ('dcgan': batch 64, Adam 2e-4 β (0.5, 0.999) as 4.2's
 * DCGAN) as its decoder.
 */
export function ganDecoderVae(
  architecture: 'mlp-gan' | 'dcgan',
  options: Omit<VaeRunConfig, 'architecture' | 'model' | 'label'>,
  classifierWeights: readonly StoredWeight[],
  seedIndex: number,
): Promise<VaeRun> {
  const label = `VAE, ${architecture === 'mlp-gan' ? 'MLP-GAN' : 'DCGAN'} decoder, run ${seedIndex}`;
  return trainVaeRun({
    ...options,
    label,
    architecture,
    latentDim: GAN_LATENT,
    model: (rng) => {
      const vae = createGanDecoderVae({ architecture: architecture === 'mlp-gan' ? 'mlp' : 'dcgan', latentDim: GAN_LATENT, rng });
      return { vae, params: vae.params };
    },
  }, classifierWeights, seedIndex);
}
