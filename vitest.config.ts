import { defineConfig } from 'vitest/config';

const slow = process.env['KEYFRAME_SLOW'] === '1';

export default defineConfig({
  test: {
    include: slow ? ['test/**/*.test.ts', 'test/**/*.slow.ts'] : ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    setupFiles: ['reflect-metadata'],
    reporters: ['default'],
  },
});
