#!/usr/bin/env node
// Thin launcher: the CLI lives in TypeScript (src/cli), compiled to dist/ by the install step.
let main;
try {
  ({ main } = await import('../dist/src/cli/main.js'));
} catch (err) {
  // Before `npm ci` (or after a failed build) there is no dist/ or no node_modules: say what to do.
  if (err && (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND')) {
    console.error('chatglm: the CLI is not built yet; run npm ci first (in the chatglm.ts folder), then try again');
    process.exit(1);
  }
  throw err;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // main() already turns known errors into messages; this is the last line of defence.
    console.error(`chatglm: ${err && err.message ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
