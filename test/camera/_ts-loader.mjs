// Lets a plain `node --import ./_ts-loader.mjs script.mts` child run the TypeScript sources (for tests that must
// SIGKILL the process running a source): .ts files transpiled by the project's typescript, `./x.js` imports
// resolved to `./x.ts` where that exists.
import { register } from 'node:module';

register(new URL('./_ts-hooks.mjs', import.meta.url));
