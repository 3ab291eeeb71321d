import { fileURLToPath } from 'node:url';
import type { TestProjectConfiguration } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Tests run the TypeScript sources of the workspace packages: no build needed. */
const alias = {
  '@punctual/shared': src('./packages/shared/src/index.ts'),
  '@punctual/store/testing': src('./packages/store/src/testing.ts'),
  '@punctual/store': src('./packages/store/src/index.ts'),
};

const project = (name: string, root: string, setup: string[] = []): TestProjectConfiguration => ({
  resolve: { alias },
  test: {
    name,
    root: src(root),
    include: ['test/**/*.test.ts'],
    globalSetup: [src('./test-support/global-setup.ts'), ...setup.map(src)],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

export default [
  project('shared', './packages/shared'),
  project('store', './packages/store'),
  project('api', './apps/api'),
  project('worker', './apps/worker'),
  // end-to-end tests spawn the built apps (start script, killed workers)
  // drives Chromium against a real API and worker; the page is the built console
  project('console', './apps/console', ['./test-support/console-build-setup.ts']),
  project('e2e', './', ['./test-support/build-setup.ts']),
];
