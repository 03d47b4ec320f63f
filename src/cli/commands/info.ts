/**
 * `chatglm info --model PATH`: what a checkpoint is (family, format, shapes, dtypes, parameter
 * count) and how much memory running it takes, without loading its weights.
 */
import type { Command } from 'commander';
import { parameterCount, qkvSize, type GLMConfig } from '../../model/config.js';
import { dtypeSummary, openCheckpoint } from '../../model/open.js';
import { FAMILIES } from '../../families/registry.js';
import { tensorBytes } from '../../model/load.js';
import { resolveModelPath } from '../default-model.js';

function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

/** f32 keys + values of the KV groups, every layer, per token (what the reference backend stores). */
export function kvBytesPerToken(c: GLMConfig): number {
  return c.numLayers * 2 * c.numGroups * c.headDim * 4;
}

export function register(program: Command): void {
  program
    .command('info')
    .description('show a model\'s family, shapes, dtypes, parameter count and memory needs')
    .option('-m, --model <path>', 'Hugging Face model directory or .gguf file (default: the bundled demo model)')
    .option('--json', 'print the information as JSON')
    .action(async (opts: { model?: string; json?: boolean }) => {
      const h = await openCheckpoint(resolveModelPath(opts.model), { families: FAMILIES });
      try {
        const c = h.config;
        const tensors = h.source.list();
        const dtypes = dtypeSummary(tensors);
        const weightBytes = tensors.reduce((s, t) => s + tensorBytes(t), 0);
        const kvToken = kvBytesPerToken(c);
        const info = {
          path: h.path,
          family: h.family,
          format: h.format === 'hf' ? `Hugging Face (${h.layout})` : 'GGUF',
          weightFiles: h.weightFiles,
          config: {
            layers: c.numLayers,
            hiddenSize: c.hiddenSize,
            heads: c.numHeads,
            headDim: c.headDim,
            kvGroups: c.numGroups,
            ffnHiddenSize: c.ffnHiddenSize,
            vocabSize: c.vocabSize,
            qkvSize: qkvSize(c),
            contextLength: c.seqLength,
            ropeBase: 10000 * (c.ropeScaling === 'base' ? c.ropeRatio : 1),
            ropeRatio: c.ropeRatio,
            ropeScaling: c.ropeScaling,
            eps: c.eps,
            preSeqLen: c.preSeqLen,
            eosTokenIds: c.eosTokenIds,
          },
          tensors: tensors.length,
          dtypes,
          parameters: parameterCount(c),
          memory: {
            weightsBytes: Math.round(weightBytes),
            kvCacheBytesPerToken: kvToken,
            kvCacheBytesFullContext: kvToken * c.seqLength,
            totalBytesFullContext: Math.round(weightBytes) + kvToken * c.seqLength,
          },
        };
        if (opts.json === true) {
          process.stdout.write(JSON.stringify(info, null, 2) + '\n');
          return;
        }
        const lines = [
          `model:       ${info.path}`,
          `family:      ${info.family}`,
          `format:      ${info.format}, ${info.weightFiles.length} weight file(s)`,
          `layers:      ${c.numLayers} x (hidden ${c.hiddenSize}, ${c.numHeads} heads x ${c.headDim}, ${c.numGroups} KV groups, ffn ${c.ffnHiddenSize})`,
          `vocabulary:  ${c.vocabSize}`,
          `context:     ${c.seqLength} tokens, RoPE base ${info.config.ropeBase}${c.ropeScaling === 'position' && c.ropeRatio !== 1 ? `, positions / ${c.ropeRatio}` : ''}`,
          `dtype:       ${Object.entries(dtypes).map(([d, n]) => `${d} ${n.toLocaleString('en-US')}`).join(', ')}`,
          `parameters:  ${info.parameters.toLocaleString('en-US')}`,
          `memory:      weights ${gib(weightBytes)}; KV cache ${(kvToken / 1024).toFixed(0)} KiB/token, ${gib(kvToken * c.seqLength)} at the full context; total ${gib(info.memory.totalBytesFullContext)}`,
        ];
        process.stdout.write(lines.join('\n') + '\n');
      } finally {
        await h.source.close();
      }
    });
}
