import { defineConfig } from 'vitest/config';

/** `npm run test:slurm`: the integration test against a real Slurm (skips when none answers). */
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['tests/slurm/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
