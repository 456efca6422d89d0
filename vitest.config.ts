import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    // The AWS SDK warns on every process that Node 20 support ends in 2027; known, and noise in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    hookTimeout: 120_000,
    // 2-core machine, and the shared stack itself needs CPU.
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      // Pure unit tests: no stack, so `vitest run test/unit` starts in a second.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // The workflow's logic against mocked activities on the Java SDK's time-skipping test server (docs/testing.md):
      // approval expiry, watch and hold deadlines, continue-as-new and cancellation in seconds, no stack.
      {
        extends: true,
        test: {
          name: 'workflow',
          include: ['test/workflow/**/*.test.ts'],
          globalSetup: ['test/workflow/global-setup.ts'],
        },
      },
      // The npm package: packed from a copy of the working tree and installed into an empty folder (minutes of npm
      // and tsc, no stack).
      { extends: true, test: { name: 'package', include: ['test/package/**/*.test.ts'] } },
      // Everything else runs against one real stack started by the global setup
      // (vitest only runs a project's global setup when that project has files to run).
      {
        extends: true,
        test: {
          name: 'stack',
          include: ['test/**/*.test.ts'],
          exclude: [
            ...configDefaults.exclude,
            'test/unit/**',
            'test/node/**',
            'test/workflow/**',
            'test/package/**',
            'test/image/**',
          ],
          globalSetup: ['test/global-setup.ts'],
        },
      },
      // A real node (docs/real-node.md): each file starts a stack of its own with one, and there is one node per
      // machine, so its files run one after another. Skipped, saying why, where containers cannot run.
      { extends: true, test: { name: 'node', include: ['test/node/**/*.test.ts'], fileParallelism: false } },
      // The image (docs/image.md): the Dockerfile built with podman on a locally assembled base, then run as the chart
      // runs it. The first build of a source takes minutes (the hook's timeout); skipped, saying why, without podman.
      { extends: true, test: { name: 'image', include: ['test/image/**/*.test.ts'], hookTimeout: 45 * 60_000 } },
    ],
  },
});
