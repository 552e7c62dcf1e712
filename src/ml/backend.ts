/**
 * Picks and initialises the tfjs backend: forced by `options.backend` or the
 * `TFJS_BACKEND` environment variable; otherwise tfjs-node (native TensorFlow) if it
 * loads, else wasm (single-threaded in Node), else the pure-JS cpu backend. Registers our
 * wasm fixes (./kernels) when wasm is chosen. Calling it again with the same choice is a
 * no-op.
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmFixes } from './kernels/index.ts';

export { tf };

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
const backendNames: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface InitBackendOptions {
  backend?: BackendName;
  env?: NodeJS.ProcessEnv;
  /** Module loader, replaceable in tests; defaults to dynamic `import`. */
  importModule?: (specifier: string) => Promise<unknown>;
}

export async function initBackend(options: InitBackendOptions = {}): Promise<BackendName> {
  const env = options.env ?? process.env;
  const importModule = options.importModule ?? ((specifier: string) => import(specifier));
  const forced = options.backend ?? parseBackendName(env.TFJS_BACKEND);
  const candidates: readonly BackendName[] = forced ? [forced] : backendNames;
  const failures: string[] = [];
  for (const name of candidates) {
    const reason = await maybeActivate(name, importModule);
    if (reason === undefined) return name;
    failures.push(`${name}: ${reason}`);
  }
  throw new Error(
    `initBackend: could not initialise ${forced ? `the forced backend '${forced}'` : 'any backend'}` +
      ` (${failures.join('; ')}). Unset TFJS_BACKEND or pick one of ${backendNames.join(', ')}.`,
  );
}

function parseBackendName(value: string | undefined): BackendName | undefined {
  if (value == null || value === '') return undefined;
  if ((backendNames as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(`TFJS_BACKEND='${value}' is not a backend; use one of ${backendNames.join(', ')}`);
}

/** Activates `name`; returns undefined on success, else why it failed. */
async function maybeActivate(
  name: BackendName,
  importModule: (specifier: string) => Promise<unknown>,
): Promise<string | undefined> {
  try {
    if (name === 'tensorflow') {
      // With install scripts skipped, tfjs-node throws a plain Error (missing native
      // binding), not MODULE_NOT_FOUND: any failure here means "not available".
      if (tf.findBackend('tensorflow') == null) await importModule('@tensorflow/tfjs-node');
    } else if (name === 'wasm') {
      if (tf.findBackendFactory('wasm') == null) await importModule('@tensorflow/tfjs-backend-wasm');
      registerWasmFixes();
    }
    if (tf.getBackend() !== name || tf.findBackend(name) == null) {
      const ok = await tf.setBackend(name);
      if (!ok) return 'tf.setBackend returned false';
    }
    await tf.ready();
    return tf.getBackend() === name ? undefined : `tfjs reports backend '${tf.getBackend()}'`;
  } catch (error) {
    return error instanceof Error ? error.message.split('\n')[0] : String(error);
  }
}
