import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'plugins/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 300_000,
    // e2e suites share one sandbox PBX; run files one at a time to keep the 2-core box honest.
    fileParallelism: false,
    reporters: ['default'],
  },
});
