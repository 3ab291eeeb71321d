import { fileURLToPath } from 'node:url';
import type { TestProjectConfiguration } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Tests run the TypeScript sources of the workspace packages: no build needed. */
const alias = {
  '@punctual/shared': src('./packages/shared/src/index.ts'),
  '@punctual/store': src('./packages/store/src/index.ts'),
};

const project = (name: string, root: string): TestProjectConfiguration => ({
  resolve: { alias },
  test: {
    name,
    root: src(root),
    include: ['test/**/*.test.ts'],
    globalSetup: [src('./test-support/global-setup.ts')],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

export default [
  project('store', './packages/store'),
  project('api', './apps/api'),
  project('worker', './apps/worker'),
  project('e2e', './'),
];
