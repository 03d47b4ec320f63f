/**
 * Runs every program of the demo model's training data in OUR code-interpreter sandbox
 * (createCodeInterpreter: bubblewrap + /usr/bin/python3 with numpy and matplotlib), the same way the
 * agent runs model-written code, and records what each printed, whether it raised and how many
 * figures it made. prepare.py calls it before building conversations: a program that fails is never
 * trained on, and each code observation in the data is the sandbox's real output.
 *
 *   node dist/tools/train-demo/verify-code.js PROGRAMS.json RESULTS.json
 *
 * PROGRAMS.json: ["code", ...]. RESULTS.json: {code: {ok, text, error, images}}; an existing
 * RESULTS.json is reused (only new programs run). The programs run one after another in one
 * sandboxed Python (a reset per program costs a second of numpy and matplotlib imports); each
 * program is self-contained, so what an earlier one left behind does not make a later one pass.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createCodeInterpreter } from '../../src/agent/interpreter/index.js';

interface Result {
  ok: boolean;
  text: string;
  error: string;
  images: number;
}

async function main(): Promise<void> {
  const [programsFile, resultsFile] = process.argv.slice(2);
  if (programsFile === undefined || resultsFile === undefined) {
    console.error('usage: node dist/tools/train-demo/verify-code.js PROGRAMS.json RESULTS.json');
    process.exit(2);
  }
  const programs = JSON.parse(readFileSync(programsFile, 'utf8')) as string[];
  const results: Record<string, Result> = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, Result>) : {};
  const unique = [...new Set(programs)];
  const todo = unique.filter((p) => results[p] === undefined);
  const interpreter = await createCodeInterpreter({ timeoutMs: 20_000 });
  const t0 = Date.now();
  let failed = 0;
  try {
    for (const code of todo) {
      const r = await interpreter.run(code);
      const error = r.error !== undefined ? (r.error.traceback !== '' ? r.error.traceback : `${r.error.name}: ${r.error.message}\n`) : '';
      const ok = r.error === undefined && !r.timedOut;
      if (!ok) failed++;
      results[code] = { ok, text: r.text, error, images: r.images.length };
    }
  } finally {
    await interpreter.close();
  }
  writeFileSync(resultsFile, JSON.stringify(results));
  console.log(`verify-code: ran ${todo.length} programs in the sandbox in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${failed} failed; ${unique.length - todo.length} cached`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
