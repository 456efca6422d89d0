import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2-core machine, and the shared stack itself needs CPU.
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      // Pure unit tests: no stack, so `vitest run test/unit` starts in a second.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // Everything else runs against one real stack started by the global setup
      // (vitest only runs a project's global setup when that project has files to run).
      {
        extends: true,
        test: {
          name: 'stack',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/unit/**'],
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
