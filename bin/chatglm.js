#!/usr/bin/env node
// Thin launcher: the CLI lives in TypeScript (src/cli), compiled to dist/ by the install step.
import { main } from '../dist/src/cli/main.js';

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
