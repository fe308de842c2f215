import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The machines are small (2 cores); model tests start worker threads of their own.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
