// Builds native/test/kernel-check.c (the kernel tables linked directly, no Node) and runs it: every
// table this CPU runs against the scalar table, and the scalar int8 dot products against an exact
// oracle. Natively with the system C compiler; for aarch64 (NEON and NEON+SDOT tables) through
// aarch64-linux-gnu-gcc + qemu-aarch64 when both are installed (.ci/run installs them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { nativeIsas } from './support/backend-native-fixtures.js';
import { repoRoot, tempDir } from './support/formats-tmp.js';

const SOURCES = [
  'native/test/kernel-check.c',
  'native/ops.c',
  'native/pool.c',
  'native/kernels_scalar.c',
  'native/kernels_avx2.c',
  'native/kernels_avx512.c',
  'native/kernels_neon.c',
  'native/batch_ops.c',
  'native/batch_kernels_avx2.c',
  'native/batch_kernels_avx512.c',
  'native/gemm_avx512.c',
  'native/gemm_kquants_avx512.c',
  'native/kq16.c',
  'native/attn_avx512.c',
  'native/attn_decode.c',
  'native/attn_rows16_avx512.c',
  'native/attn_bf16.c',
  'native/attn_bf16_avx512.c',
].map((f) => path.join(repoRoot, f));
// The addon's flags (binding.gyp): the generic kernels are auto-vectorised differently at -O3.
const CFLAGS = ['-O3', '-std=c11', '-fno-strict-aliasing', '-Wall', '-Wno-unused-parameter'];
// One report line per function pointer of kernels_t (quantize_q8_K, kq_dot and lq_dot included), and four whole operations (matmul q8_0,
// q4_0, and the k-quant / q4_1 / q5_0 / q5_1 types, attention) run through ops.c with the table selected.
const KERNELS_PER_TABLE = 19 + 4;

function onPath(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

function build(cc: string, extra: string[], out: string): void {
  const r = spawnSync(cc, [...CFLAGS, ...extra, ...SOURCES, '-lm', '-lpthread', '-o', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cc} failed:\n${r.stderr}`);
}

function run(cmd: string, args: string[]): string {
  // CHATGLM_ISA would override the dispatch the report is checked against.
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, CHATGLM_ISA: '' } });
  assert.equal(r.error, undefined, String(r.error));
  assert.equal(r.status, 0, `kernel check failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Checks the report: the listed tables, one ok line per kernel of each, no FAIL. */
function checkReport(out: string, tables: string[]): void {
  const m = /^tables this CPU runs: (\S+); dispatch picks: (\S+)$/m.exec(out);
  assert.ok(m, out);
  assert.deepEqual(m[1]!.split(','), tables);
  assert.equal(m[2], tables[tables.length - 1], 'dispatch should pick the last (best) table');
  assert.doesNotMatch(out, /FAIL/);
  assert.match(out, /^ok: 0 failure\(s\)$/m);
  assert.match(out, /^scalar +dot_q8_0 +vs oracle +ok/m);
  assert.match(out, /^scalar +dot_q4_0 +vs oracle +ok/m);
  assert.match(out, /^scalar +kq_dot +vs oracle +ok/m);
  assert.match(out, /^scalar +lq_dot +vs oracle +ok/m);
  for (const t of tables.slice(1)) {
    const lines = out.split('\n').filter((l) => l.startsWith(`${t} `));
    // Optional kernels per table. Prefill GEMMs: three lines each for q4_0 / q8_0 (vs scalar, vs oracle, bit-equal to the
    // table's x8 kernels), four each for the k-quants and q4_1 / q5_0 / q5_1 (vs scalar, oracle, the table's kq_dot / lq_dot,
    // cg_matmul). Decode attention (attn_rows16): one line against scalar; the bf16 prefill attention: three lines where
    // the table has it and the CPU runs avx512_bf16.
    const gemm = lines.filter((l) => / gemm_(q[48]_0|kq|lq) | attn_rows16 | attn_bf16_tiles | attn_rows16_bf16 | attention_bf16 /.test(l));
    // The four-row decode kernels: two lines each (bit-equal to the table's one-row kernel, vs scalar).
    const r4 = lines.filter((l) => / [kl]q_dot_r4 /.test(l));
    // The x16 k-quant layout (kq16.h): four lines where the table reads it (rows back, embedding, pack, dot),
    // and four more for its q4_1 / q5_0 / q5_1 form (lq16).
    const x16 = lines.filter((l) => / [kl]q16 (rows|embed|pack|dot) /.test(l));
    assert.equal(lines.length - gemm.length - r4.length - x16.length, KERNELS_PER_TABLE, `${t}: ${lines.length} kernel lines\n${out}`);
    if (t === 'avx512vnni') assert.equal(x16.length, 8, `${t} reads q4_K and q4_1 / q5_0 / q5_1 in the x16 layout\n${out}`);
    for (const l of x16) assert.match(l, / vs (ggml|scalar|pack) +ok /);
    if (t === 'avx512vnni') assert.equal(r4.length, 4, `${t} has the four-row k-quant and q4_1/q5_0/q5_1 decode kernels\n${out}`);
    if (t === 'avx512vnni') {
      assert.ok(gemm.length === 15 || gemm.length === 18, `${t} has the q4_0, q8_0, k-quant and q4_1/q5_0/q5_1 GEMM kernels and attn_rows16 (and the bf16 attention)\n${out}`);
    }
    for (const l of gemm) assert.match(l, / vs (scalar|oracle|x8_1\/_4|kq_dot|lq_dot|matmul) +ok /);
    for (const l of r4) assert.match(l, new RegExp(` vs (scalar|${t}) +ok `));
    for (const l of lines.filter((x) => !gemm.includes(x) && !r4.includes(x) && !x16.includes(x))) assert.match(l, / vs scalar +ok /);
  }
}

test('kernel tables of this CPU match the scalar table (native build of native/test/kernel-check.c)', async (t) => {
  if (!onPath('cc', ['--version'])) {
    t.skip('no C compiler (cc) on PATH');
    return;
  }
  const { dir, cleanup } = await tempDir('chatglm-kcheck-');
  try {
    const exe = path.join(dir, 'kernel-check');
    build('cc', [], exe);
    const out = run(exe, []);
    const m = /^tables this CPU runs: (\S+);/m.exec(out);
    assert.ok(m, out);
    const tables = m[1]!.split(',');
    assert.equal(tables[0], 'scalar');
    // The built addon, where there is one, lists the same tables through the same dispatch code.
    const addonIsas = nativeIsas();
    if (addonIsas.length > 0) assert.deepEqual(tables, addonIsas);
    checkReport(out, tables);
  } finally {
    await cleanup();
  }
});

test('aarch64 NEON tables match the scalar table under qemu (with and without dotprod)', async (t) => {
  if (!onPath('aarch64-linux-gnu-gcc', ['--version']) || !onPath('qemu-aarch64', ['--version'])) {
    t.skip('aarch64-linux-gnu-gcc and qemu-aarch64 not both on PATH (apt-get install gcc-aarch64-linux-gnu qemu-user)');
    return;
  }
  const { dir, cleanup } = await tempDir('chatglm-kcheck-a64-');
  try {
    const exe = path.join(dir, 'kernel-check');
    build('aarch64-linux-gnu-gcc', ['-static'], exe);
    // -cpu max has SDOT; Cortex-A57 is ARMv8.0 without it, so only the plain NEON table runs.
    checkReport(run('qemu-aarch64', ['-cpu', 'max', exe, '--expect-best', 'neondot']), ['scalar', 'neon', 'neondot']);
    checkReport(run('qemu-aarch64', ['-cpu', 'cortex-a57', exe, '--expect-best', 'neon']), ['scalar', 'neon']);
  } finally {
    await cleanup();
  }
});
