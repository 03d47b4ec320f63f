/**
 * A deliberately naive SentencePiece BPE, written straight from the library's description and
 * independent of src/: strings instead of ids, a full rescan of all adjacent pairs per merge.
 * Only for models without UNUSED pieces and with identity normalization, dummy prefix on,
 * whitespace kept.
 */
import type { SentencePieceEntry } from '../../src/tokenizer/index.js';

export function oracleEncode(pieces: readonly SentencePieceEntry[], text: string, byteFallback: boolean): number[] {
  const mergeable = new Map<string, number>(); // NORMAL(1) USER_DEFINED(4) UNUSED(5)
  const all = new Map<string, number>();
  const userDefined: string[] = [];
  pieces.forEach((p, i) => {
    if (p.type === 1 || p.type === 4 || p.type === 5) mergeable.set(p.piece, i);
    else all.set(p.piece, i);
    if (p.type === 4) userDefined.push(p.piece);
  });
  const unk = pieces.findIndex((p) => p.type === 2);
  if (text === '') return [];
  const norm = '\u2581' + text.replaceAll(' ', '\u2581');
  const syms: { s: string; frozen: boolean }[] = [];
  let i = 0;
  while (i < norm.length) {
    const ud = userDefined.filter((u) => norm.startsWith(u, i)).sort((a, b) => b.length - a.length)[0];
    if (ud !== undefined) {
      syms.push({ s: ud, frozen: true });
      i += ud.length;
      continue;
    }
    const ch = String.fromCodePoint(norm.codePointAt(i)!);
    syms.push({ s: ch, frozen: false });
    i += ch.length;
  }
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let k = 0; k + 1 < syms.length; k++) {
      if (syms[k]!.frozen || syms[k + 1]!.frozen) continue;
      const id = mergeable.get(syms[k]!.s + syms[k + 1]!.s);
      if (id !== undefined && pieces[id]!.score > bestScore) {
        bestScore = pieces[id]!.score;
        best = k;
      }
    }
    if (best < 0) break;
    syms.splice(best, 2, { s: syms[best]!.s + syms[best + 1]!.s, frozen: false });
  }
  const out: number[] = [];
  for (const { s } of syms) {
    const id = all.get(s) ?? mergeable.get(s) ?? unk;
    if (id === unk && byteFallback) {
      for (const b of Buffer.from(s, 'utf8')) out.push(all.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!);
    } else if (id === unk && out.length > 0 && out[out.length - 1] === unk) {
      continue;
    } else out.push(id);
  }
  return out;
}
