import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** `npm run test:slurm`: the integration test against a real Slurm (skips when none answers). */
export default defineConfig({
  test: {
    // fileURLToPath, not .pathname: a clone whose path has a space would be root "p%20dir".
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['tests/slurm/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
