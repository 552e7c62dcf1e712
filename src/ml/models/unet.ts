/**
 * A small time- and class-conditioned U-Net for 28×28 images: the velocity network of
 * section 4.4's flow-matching model (flow-matching.ts).
 *
 * References: O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for
 * Biomedical Image Segmentation", MICCAI 2015 (encoder–decoder with skip connections);
 * J. Ho, A. Jain and P. Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020,
 * Appendix B (residual blocks, sinusoidal time embedding added inside every block,
 * zero-initialised last layers); W. Shi et al., "Real-Time Single Image and Video
 * Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network", CVPR 2016
 * (space-to-depth / depth-to-space).
 *
 * Why space-to-depth: convolutions are the cost of every step on our one-core wasm backend.
 * Folding each 2×2 pixel block into 4 channels (28×28×1 → 14×14×4) divides the spatial
 * positions by 4 at the first level, where a pixel-resolution U-Net spends most of its time
 * (measured: a 32/64 U-Net epoch ≈ 41 min at 28×28 against ≈ 5.5 min at 14×14×4). The
 * first convolution still sees a 6×6-pixel window, so nothing is lost but some depth.
 *
 * Layout (channels c1, c2; E = embedding width; NHWC):
 *   x [b, 784] → [b, 28, 28, 1] → space-to-depth → [b, 14, 14, 4] → conv3×3 c1
 *   → res(c1) ─────────────────────────────────────────────┐ skip
 *   → conv3×3 stride 2 → [b, 7, 7, c2] → res(c2) → res(c2)   │
 *   → conv-transpose 4×4 stride 2 → [b, 14, 14, c1] ⊕ skip → res(2·c1 → c1)
 *   → SiLU → conv3×3 4 (zero-initialised) → depth-to-space → [b, 784]
 * res(cin → cout): h = conv3×3(SiLU(x)) + Dense(SiLU(emb)); h = conv3×3(SiLU(h)) with the
 * second convolution zero-initialised (each block starts as the identity, Ho et al.'s
 * `zero_module`); output = h + (cin = cout ? x : conv1×1(x)).
 * emb = Dense(SiLU(Dense(sinusoid(t)))) + classTable[y], with class index 10 = "no label"
 * (for classifier-free guidance).
 *
 * No normalisation layers: the net is shallow, blocks start as identities, and a
 * batch-statistics norm would make a sample depend on the other samples of its batch.
 * Initialisation otherwise as PyTorch's defaults (U(±1/√fanIn)).
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random.ts';
import { applyDense, countParams, createDense, uniformVariable, type Dense } from './dense.ts';

/** Number of classes; class index `NULL_CLASS` means "unconditional". */
export const CLASSES = 10;
export const NULL_CLASS = CLASSES;

export interface UNetOptions {
  /** Channels at 14×14 and at 7×7 (default [32, 64]). */
  channels?: readonly [number, number];
  /** Width of the time/class embedding (default 64). */
  embedDim?: number;
  /** Sinusoid frequencies of the time embedding (default 16, giving 32 features). */
  frequencies?: number;
  rng: Rng;
}

interface Conv {
  filter: tf.Variable<tf.Rank.R4>;
  bias: tf.Variable<tf.Rank.R1>;
}

interface ResBlock {
  conv1: Conv;
  embed: Dense;
  conv2: Conv;
  shortcut?: Conv;
}

export interface UNet {
  readonly options: Required<Omit<UNetOptions, 'rng'>>;
  readonly variables: tf.Variable[];
  /**
   * Velocity (or any image-shaped output) for x [b, 784], times t [b] in [0, 1] and class
   * indices y [b] in 0…10 (10 = no label). Returns [b, 784].
   */
  apply(x: tf.Tensor2D, t: tf.Tensor1D, y: tf.Tensor1D): tf.Tensor2D;
  dispose(): void;
}

function createConv(size: number, cin: number, cout: number, rng: Rng, zero = false): Conv {
  const bound = zero ? 0 : 1 / Math.sqrt(cin * size * size);
  return {
    filter: uniformVariable([size, size, cin, cout], bound, rng.seed()),
    bias: uniformVariable([cout], bound, rng.seed()),
  };
}

function applyConv(conv: Conv, x: tf.Tensor4D, stride = 1): tf.Tensor4D {
  return tf.add(tf.conv2d(x, conv.filter, stride, 'same'), conv.bias);
}

function silu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x));
}

function createResBlock(cin: number, cout: number, embedDim: number, rng: Rng): ResBlock {
  return {
    conv1: createConv(3, cin, cout, rng),
    embed: createDense(embedDim, cout, rng),
    conv2: createConv(3, cout, cout, rng, true),
    shortcut: cin === cout ? undefined : createConv(1, cin, cout, rng),
  };
}

function applyResBlock(block: ResBlock, x: tf.Tensor4D, emb: tf.Tensor2D): tf.Tensor4D {
  const [b] = x.shape;
  const cout = block.conv1.bias.shape[0];
  let h = applyConv(block.conv1, silu(x));
  h = tf.add(h, tf.reshape(applyDense(block.embed, emb), [b, 1, 1, cout]));
  h = applyConv(block.conv2, silu(h));
  return tf.add(block.shortcut ? applyConv(block.shortcut, x) : x, h);
}

function resBlockVariables(block: ResBlock): tf.Variable[] {
  const convs = [block.conv1, block.conv2, ...(block.shortcut ? [block.shortcut] : [])];
  return [...convs.flatMap((c) => [c.filter, c.bias]), block.embed.kernel, block.embed.bias];
}

/** [b, 28, 28, 1] → [b, 14, 14, 4]: each 2×2 block of pixels becomes 4 channels (row-major within the block). */
export function spaceToDepth(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const blocks = tf.reshape(x, [b, h / 2, 2, w / 2, 2, c]);
  return tf.reshape(tf.transpose(blocks, [0, 1, 3, 2, 4, 5]), [b, h / 2, w / 2, 4 * c]);
}

/** The inverse of `spaceToDepth`. */
export function depthToSpace(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c4] = x.shape;
  const c = c4 / 4;
  const blocks = tf.reshape(x, [b, h, w, 2, 2, c]);
  return tf.reshape(tf.transpose(blocks, [0, 1, 3, 2, 4, 5]), [b, 2 * h, 2 * w, c]);
}

/** Sinusoidal features of t ∈ [0, 1] as in Vaswani et al. (2017) / Ho et al. (2020), on 1000·t: [b, 2·frequencies]. */
export function timeFeatures(t: tf.Tensor1D, frequencies: number): tf.Tensor2D {
  const scales = Array.from({ length: frequencies }, (_, k) => 1000 * Math.exp((-Math.log(10000) * k) / frequencies));
  const angles = tf.mul(tf.reshape(t, [-1, 1]), tf.tensor2d(scales, [1, frequencies]));
  return tf.concat([tf.sin(angles), tf.cos(angles)], 1) as tf.Tensor2D;
}

export function createUNet(options: UNetOptions): UNet {
  const { channels = [32, 64], embedDim = 64, frequencies = 16, rng } = options;
  const [c1, c2] = channels;
  const layers = {
    time1: createDense(2 * frequencies, embedDim, rng),
    time2: createDense(embedDim, embedDim, rng),
    // nn.Embedding's default init is N(0, 1); a uniform table of the same variance.
    classes: uniformVariable<tf.Rank.R2>([CLASSES + 1, embedDim], Math.sqrt(3), rng.seed()),
    input: createConv(3, 4, c1, rng),
    down1: createResBlock(c1, c1, embedDim, rng),
    downsample: createConv(3, c1, c2, rng),
    mid1: createResBlock(c2, c2, embedDim, rng),
    mid2: createResBlock(c2, c2, embedDim, rng),
    upsample: {
      // conv2dTranspose filter [h, w, out, in]; PyTorch's fan-in for ConvTranspose2d is out·h·w.
      filter: uniformVariable<tf.Rank.R4>([4, 4, c1, c2], 1 / Math.sqrt(c1 * 16), rng.seed()),
      bias: uniformVariable<tf.Rank.R1>([c1], 1 / Math.sqrt(c1 * 16), rng.seed()),
    },
    up1: createResBlock(2 * c1, c1, embedDim, rng),
    output: createConv(3, c1, 4, rng, true),
  };
  const variables: tf.Variable[] = [
    layers.time1.kernel, layers.time1.bias, layers.time2.kernel, layers.time2.bias, layers.classes,
    layers.input.filter, layers.input.bias,
    ...resBlockVariables(layers.down1),
    layers.downsample.filter, layers.downsample.bias,
    ...resBlockVariables(layers.mid1), ...resBlockVariables(layers.mid2),
    layers.upsample.filter, layers.upsample.bias,
    ...resBlockVariables(layers.up1),
    layers.output.filter, layers.output.bias,
  ];
  return {
    options: { channels, embedDim, frequencies },
    variables,
    apply(x, t, y) {
      const b = x.shape[0];
      const time = applyDense(layers.time2, silu(applyDense(layers.time1, timeFeatures(t, frequencies))));
      // One-hot times the table rather than tf.gather: the same lookup, with a matMul gradient.
      const label = tf.matMul(tf.oneHot(tf.cast(y, 'int32'), CLASSES + 1).toFloat(), layers.classes);
      const emb = silu(tf.add(time, label)) as tf.Tensor2D; // [b, E]
      const h0 = applyConv(layers.input, spaceToDepth(tf.reshape(x, [b, 28, 28, 1]))); // [b, 14, 14, c1]
      const skip = applyResBlock(layers.down1, h0, emb);
      let h = applyConv(layers.downsample, skip, 2); // [b, 7, 7, c2]
      h = applyResBlock(layers.mid2, applyResBlock(layers.mid1, h, emb), emb);
      h = tf.add(tf.conv2dTranspose(h, layers.upsample.filter, [b, 14, 14, c1], 2, 'same'), layers.upsample.bias);
      h = applyResBlock(layers.up1, tf.concat([h, skip], 3) as tf.Tensor4D, emb); // [b, 14, 14, c1]
      const out = applyConv(layers.output, silu(h)); // [b, 14, 14, 4]
      return tf.reshape(depthToSpace(out), [b, 784]);
    },
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

export function unetParamCount(net: Pick<UNet, 'variables'>): number {
  return countParams(net.variables);
}
