/**
 * An independent float64 re-implementation of the original ChatGLM2/3 / GLM-4 forward pass
 * (modeling_chatglm.py, as summarised in ../shared/notes/chatglm-reference.md §1.3-1.4), used as
 * the oracle for the model. It deliberately shares no code with src/: it reads the raw config.json
 * object and weights by HF name, processes the whole sequence at once with naive full-softmax
 * attention (explicit causal mask, every query head expanded from its KV group), and computes in
 * float64 throughout.
 */

export interface OracleOptions {
  /** 'position' divides positions by rope_ratio (ChatGLM2-32k) instead of scaling the base. */
  ropeScaling?: 'base' | 'position';
}

type Vec = Float64Array;

function linear(w: ArrayLike<number>, outDim: number, inDim: number, x: Vec, bias?: ArrayLike<number>): Vec {
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let s = bias === undefined ? 0 : bias[o]!;
    for (let i = 0; i < inDim; i++) s += w[o * inDim + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function rmsNorm(x: Vec, w: ArrayLike<number>, eps: number): Vec {
  let meanSq = 0;
  for (const v of x) meanSq += v * v;
  meanSq /= x.length;
  const r = 1 / Math.sqrt(meanSq + eps);
  return Float64Array.from(x, (v, i) => w[i]! * v * r);
}

/** Rotates adjacent pairs of the first half of `head` (length d) for position `pos`. */
function rotate(head: Vec, pos: number, base: number): void {
  const d = head.length;
  const nElem = d / 2; // rotary dim: half of the head
  for (let i = 0; i < nElem / 2; i++) {
    const theta = 1 / Math.pow(base, (2 * i) / nElem);
    const a = pos * theta;
    const [x0, x1] = [head[2 * i]!, head[2 * i + 1]!];
    head[2 * i] = x0 * Math.cos(a) - x1 * Math.sin(a);
    head[2 * i + 1] = x1 * Math.cos(a) + x0 * Math.sin(a);
  }
}

/**
 * Logits for every position of `ids` ([n][vocab]), or the final-norm hidden states with
 * `hiddenOnly`. `weights` maps HF names to the values the checkpoint really stores.
 * `prefix` (P-Tuning v2), when given, is the prefix embedding [pre_seq_len, layers*2*groups*d].
 */
export function oracleForward(
  config: Record<string, unknown>,
  weights: ReadonlyMap<string, ArrayLike<number>>,
  ids: readonly number[],
  options: OracleOptions & { hiddenOnly?: boolean } = {},
): number[][] {
  const hidden = config['hidden_size'] as number;
  const layers = config['num_layers'] as number;
  const nh = config['num_attention_heads'] as number;
  const d = config['kv_channels'] as number;
  const ng = config['multi_query_group_num'] as number;
  const ffn = config['ffn_hidden_size'] as number;
  const vocab = config['padded_vocab_size'] as number;
  const eps = config['layernorm_epsilon'] as number;
  const ratio = (config['rope_ratio'] as number | undefined) ?? 1;
  const pre = (config['pre_seq_len'] as number | undefined) ?? 0;
  const scaling = options.ropeScaling ?? 'base';
  const base = scaling === 'base' ? 10000 * ratio : 10000;
  const W = (name: string): ArrayLike<number> => {
    const w = weights.get(name);
    if (w === undefined) throw new Error(`oracle: missing ${name}`);
    return w;
  };
  const n = ids.length;

  const emb = W('transformer.embedding.word_embeddings.weight');
  let h: Vec[] = ids.map((id) => Float64Array.from({ length: hidden }, (_, i) => emb[id * hidden + i]!));

  for (let l = 0; l < layers; l++) {
    const p = `transformer.encoder.layers.${l}.`;
    const qkvDim = nh * d + 2 * ng * d;
    // queries per head, keys/values per group, for every position
    const Q: Vec[][] = [];
    const Kp: Vec[][] = []; // [group][t] past (prefix) then sequence
    const Vp: Vec[][] = [];
    for (let g = 0; g < ng; g++) {
      Kp.push([]);
      Vp.push([]);
    }
    if (pre > 0) {
      const pe = W('transformer.prefix_encoder.embedding.weight');
      const row = layers * 2 * ng * d;
      for (let t = 0; t < pre; t++) {
        for (let g = 0; g < ng; g++) {
          Kp[g]!.push(Float64Array.from({ length: d }, (_, i) => pe[t * row + ((2 * l) * ng + g) * d + i]!));
          Vp[g]!.push(Float64Array.from({ length: d }, (_, i) => pe[t * row + ((2 * l + 1) * ng + g) * d + i]!));
        }
      }
    }
    for (let t = 0; t < n; t++) {
      const x = rmsNorm(h[t]!, W(`${p}input_layernorm.weight`), eps);
      const qkv = linear(W(`${p}self_attention.query_key_value.weight`), qkvDim, hidden, x, weights.get(`${p}self_attention.query_key_value.bias`));
      const pos = scaling === 'position' ? t / ratio : t;
      const qs: Vec[] = [];
      for (let hh = 0; hh < nh; hh++) {
        const q = qkv.slice(hh * d, (hh + 1) * d);
        rotate(q, pos, base);
        qs.push(q);
      }
      Q.push(qs);
      for (let g = 0; g < ng; g++) {
        const k = qkv.slice(nh * d + g * d, nh * d + (g + 1) * d);
        rotate(k, pos, base);
        Kp[g]!.push(k);
        Vp[g]!.push(qkv.slice(nh * d + ng * d + g * d, nh * d + ng * d + (g + 1) * d));
      }
    }
    const next: Vec[] = [];
    for (let t = 0; t < n; t++) {
      const ctx = new Float64Array(nh * d);
      for (let hh = 0; hh < nh; hh++) {
        const g = Math.floor(hh / (nh / ng)); // each group repeated nh/ng times, in order
        const keys = Kp[g]!;
        // full score row over prefix + sequence, causal mask as -Infinity
        const scores = keys.map((k, j) => {
          if (j - pre > t) return -Infinity;
          let s = 0;
          for (let i = 0; i < d; i++) s += Q[t]![hh]![i]! * k[i]!;
          return s / Math.sqrt(d);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j < keys.length; j++) {
          const pr = e[j]! / sum;
          for (let i = 0; i < d; i++) ctx[hh * d + i] += pr * Vp[g]![j]![i]!;
        }
      }
      const attnOut = linear(W(`${p}self_attention.dense.weight`), hidden, nh * d, ctx);
      const h1 = Float64Array.from(h[t]!, (v, i) => v + attnOut[i]!);
      const y = rmsNorm(h1, W(`${p}post_attention_layernorm.weight`), eps);
      const u = linear(W(`${p}mlp.dense_h_to_4h.weight`), 2 * ffn, hidden, y);
      const act = Float64Array.from({ length: ffn }, (_, i) => {
        const gate = u[i]!;
        return (gate / (1 + Math.exp(-gate))) * u[ffn + i]!;
      });
      const mlpOut = linear(W(`${p}mlp.dense_4h_to_h.weight`), hidden, ffn, act);
      next.push(Float64Array.from(h1, (v, i) => v + mlpOut[i]!));
    }
    h = next;
  }
  const finalH = h.map((x) => rmsNorm(x, W('transformer.encoder.final_layernorm.weight'), eps));
  if (options.hiddenOnly === true) return finalH.map((x) => Array.from(x));
  return finalH.map((x) => Array.from(linear(W('transformer.output_layer.weight'), vocab, hidden, x)));
}
