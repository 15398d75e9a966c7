#!/usr/bin/env node
// Launcher for the compiled CLI. `npm install` runs `prepare`, which compiles src/ into dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(entry)) {
  process.stderr.write('keyframe: not built yet (dist/ is missing): run `npm install` or `npm run build`\n');
  process.exit(2);
}
const { run } = await import(entry);
await run(process.argv.slice(2));
