import { defineConfig } from 'vitest/config';
import projects from './vitest.workspace.js';

export default defineConfig({
  test: {
    projects,
    // Tests share one machine with a real Redis: keep parallelism modest.
    maxWorkers: 2,
  },
});
