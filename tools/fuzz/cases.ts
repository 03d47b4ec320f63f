/** Case i of a fuzz run: which seed, and its mutated bytes, from (run seed, i) alone. */
import { mutate, Rng } from './mutate.js';
import type { Seed, SeedFormat } from './seeds.js';

export interface FuzzCase {
  index: number;
  format: SeedFormat;
  seedName: string;
  data: Uint8Array;
}

/** Cases 0 .. seeds.length-1 are the seeds unchanged (each must be accepted); then mutations, seeds in turn. */
export function fuzzCase(seeds: readonly Seed[], runSeed: number, index: number): FuzzCase {
  const seed = seeds[index % seeds.length]!;
  if (index < seeds.length) return { index, format: seed.format, seedName: seed.name, data: seed.data };
  const r = new Rng((Math.imul(runSeed, 0x9e3779b1) ^ Math.imul(index, 0x85ebca6b)) >>> 0);
  return { index, format: seed.format, seedName: seed.name, data: mutate(seed, r) };
}
