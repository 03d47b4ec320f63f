"""Generate the synthetic corpus, train the SentencePiece BPE tokenizer and tokenize the corpus.

  /usr/bin/python3 tools/train-demo/prepare.py [--conversations 60000] [--vocab 4000] [--work DIR]

The defaults are the reading-tools recipe's fifth run (README "the fourth and fifth runs"); the
committed model's data is made by this script as of git commit 2ceedda, the first model's
(README "History") as of 96ea59f.

Outputs (in tools/train-demo/work/ or --work, git-ignored): tokenizer.model, train.pt (token ids +
loss masks), program-results.json (the sandbox's output for every program) and heldout.json (the
held-out set this tokenizer would keep; the evaluation uses the committed tools/train-demo/heldout.json).
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

import sentencepiece as spm
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import data  # noqa: E402
import tooldata  # noqa: E402

SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]


class GLM3Tokens:
    """ChatGLM3 token layout on top of our SentencePiece model (HF3 tokenization_chatglm.py)."""

    def __init__(self, model_file):
        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        self.n = self.sp.get_piece_size()
        self.special = {name: self.n + i for i, name in enumerate(SPECIALS)}

    def role(self, r):
        return self.special["<|" + r + "|>"]

    def message(self, m):
        """build_single_message: <|role|> + sp.encode(metadata + "\\n") + sp.encode(content)."""
        return [self.role(m["role"])] + self.sp.encode(m["metadata"] + "\n") + self.sp.encode(m["content"])

    def prompt(self, messages):
        ids = [self.special["[gMASK]"], self.special["sop"]]
        for m in messages:
            ids += self.message(m)
        return ids + [self.role("assistant")]

    def conversation(self, messages):
        """ids and loss mask; the loss covers assistant tokens (metadata line included) and the
        token that ends the reply (next role token, or eos 2 at the end)."""
        ids = [self.special["[gMASK]"], self.special["sop"]]
        mask = [0, 0]
        for i, m in enumerate(messages):
            toks = self.message(m)
            if m["role"] == "assistant":
                ids += toks
                mask += [0] + [1] * (len(toks) - 1)
                nxt = messages[i + 1]["role"] if i + 1 < len(messages) else None
                if nxt is None:
                    ids.append(2)
                    mask.append(1)
                # otherwise the next message's role token is the stop, and it is scored below
            else:
                prev_assistant = i > 0 and messages[i - 1]["role"] == "assistant"
                ids += toks
                mask += [1 if prev_assistant else 0] + [0] * (len(toks) - 1)
        return ids, mask


def write_heldout(tok, counts, seed, path, code_items):
    """The held-out set: items whose every token occurs >= 10 times in the training ids (so the model
    has trained embeddings for them; the words themselves never occur in training)."""
    def covered(text):
        return all(counts[t] >= 10 for t in tok.sp.encode(text))
    zh_ok = [c for c in data.HELDOUT_ZH_CANDIDATES if covered(c) and covered(f'"{c}"')]
    en_ok = [c for c in data.HELDOUT_EN if covered(c) and covered(f'"{c}"')]
    data.HELDOUT_EN[:] = en_ok
    items = tooldata.eval_set(seed + 1, zh_ok, code_items)
    keep = []
    for it in items:
        msgs = it.get("observation_messages", it["messages"])
        if all(covered(m["content"]) for m in msgs) and (it["kind"] == "code" or covered(it["reference_answer"])):
            keep.append(it)
    by_kind = collections.Counter(it["kind"] for it in keep)
    print(f"held-out cities usable: zh {len(zh_ok)}, en {len(en_ok)}; items kept {dict(by_kind)} of {len(items)}")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"zh_cities": zh_ok, "en_cities": en_ok, "items": keep}, f, ensure_ascii=False, indent=1)


def verify_programs(work, codes):
    """Runs the programs in our sandbox (verify-code.ts; needs `npx tsc -p .` first) and returns
    {code: result}; cached in work/program-results.json."""
    progs = os.path.join(work, "programs.json")
    results = os.path.join(work, "program-results.json")
    with open(progs, "w") as f:
        json.dump(sorted(set(codes)), f)
    script = os.path.join(ROOT, "dist", "tools", "train-demo", "verify-code.js")
    if not os.path.exists(script):
        sys.exit(f"{script} is missing: run `npx tsc -p .` in the repository first")
    subprocess.run(["node", script, progs, results], check=True)
    with open(results) as f:
        return json.load(f)


def user_symbols(args):
    """SentencePiece pieces that are cut out before BPE (longest match first)."""
    if args.space_piece:
        return ["\u2581" * k for k in (32, 28, 24, 20, 16, 12, 8, 4, 3, 2, 1)]
    return [",\u2581"] if args.comma_space_piece else []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=60000)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--mix", default="48,14,6,2,10,16,4", help="weights of tool, code, nofit, greet, echo, choose, classic conversations")
    ap.add_argument("--programs", type=int, default=4000, help="code requests generated (each run in the sandbox)")
    ap.add_argument("--heldout-code", type=int, default=40)
    ap.add_argument("--tool-counts", default="1,2,2,3", help="tools declared per conversation, drawn uniformly from this list")
    ap.add_argument("--extra-counts", default="0,0,1,1,2", help="extra parameters per training tool, drawn from this list")
    ap.add_argument("--shapes", default="0.45,0.4", help="shares of the OpenAI and plain tool-list shapes (the rest: composite dict)")
    ap.add_argument("--turns", default="2,2,3,3,4", help="questions per tool list, drawn from this list")
    ap.add_argument("--dummy-prefix", type=int, default=1,
                    help="SentencePiece's add_dummy_prefix (1, the first two runs: a tool name then splits differently in "
                         "the call line, after the word-start marker, and in the tool list, after a quote; 0: the same "
                         "pieces in both, the third run, which did not learn to copy: README)")
    ap.add_argument("--comma-space-piece", type=int, default=0,
                    help="1: ', ' is one user-defined piece, so that the word after it starts without the word-start "
                         "marker (a call's later parameter names then split as in the tool list; the third run)")
    ap.add_argument("--space-piece", type=int, default=1,
                    help="1: a space is always a piece of its own (and runs of 2-4 and multiples of 4 spaces one piece "
                         "each, for JSON indentation), so no piece holds a space and a word splits into the same pieces "
                         "wherever it stands: in the question, the tool list, the description and the call (the fifth "
                         "run, and the default: README); implies --dummy-prefix 0 (0: the tokenizers of the runs before)")
    ap.add_argument("--out", default="train.pt")
    ap.add_argument("--work", default=os.path.join(HERE, "work"), help="output folder (tokenizer, token files)")
    ap.add_argument("--heldout", default="", help="held-out set to write (default: heldout.json in --work; the committed "
                    "tools/train-demo/heldout.json is the fixed yardstick and is compared with it, not overwritten)")
    args = ap.parse_args()
    work = args.work
    os.makedirs(work, exist_ok=True)
    t0 = time.time()

    code_items = tooldata.code_pool(args.seed + 7, args.programs)
    heldout_code = tooldata.code_pool(args.seed + 8, args.heldout_code, heldout=True)
    results = verify_programs(work, [it["code"] for it in code_items + heldout_code])
    bad = [c for c in set(it["code"] for it in code_items) if not results[c]["ok"]]
    print(f"programs: {len(set(it['code'] for it in code_items))} distinct, {len(bad)} failed in the sandbox (not used)")
    bad_ho = [it["question"] for it in heldout_code if not results[it["code"]]["ok"]]
    assert not bad_ho, bad_ho  # held-out reference programs must run too

    ints = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    gen = tooldata.ToolGen(args.seed, code_items, results, tool_counts=ints(args.tool_counts), extra_counts=ints(args.extra_counts),
                           shapes=tuple(float(x) for x in args.shapes.split(",")), turns=ints(args.turns))
    weights = [float(x) for x in args.mix.split(",")]
    convs = [gen.conversation(weights) for _ in range(args.conversations)]
    import re
    # No held-out English word in any tool name or parameter name of the training data (made-up Chinese words
    # may by chance contain a held-out Chinese word's characters side by side).
    for c in convs:
        for m in c:
            if m["metadata"] and m["metadata"] != "interpreter":
                names = " ".join([m["metadata"]] + re.findall(r"(\w+)=", m["content"])).lower()
                assert not any(w in names for w in tooldata.HELDOUT_WORDS), m

    # Tokenizer corpus: message texts with the vocabulary of tools and values cut out (topic words,
    # parameter nouns, cities), so that these split into short shared pieces just as the held-out
    # words must; the Chinese characters they use are added one by one to stay in the alphabet.
    words = sorted({w for pool in (tooldata.TRAIN_TOPICS, tooldata.COUNT_NOUNS, tooldata.AMOUNT_NOUNS, tooldata.FLAG_NOUNS,
                                   tooldata.ENUMS, tooldata.ARRAY_NOUNS) for e in pool for w in e[0].split() if len(w) >= 3}
                   | set(data.EN_CITIES) | set(data.ZH_CITIES) | {e[1] for e in tooldata.TRAIN_TOPICS}, key=len, reverse=True)
    cut = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for c in convs[:15000]:
            for m in c:
                for line in (m["metadata"] + "\n" + m["content"]).split("\n"):
                    line = cut.sub("", line)
                    if line:
                        f.write(line + "\n")
        f.write(" ".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + "\n" + " ".join("abcdefghijklmnopqrstuvwxyz") + "\n")
        chars = sorted(set(data.ZH_PLACE_CHARS) | set(tooldata.ZH_FILLER_CHARS) | set("".join(data.ZH_CITIES)))
        for i in range(0, len(chars), 20):
            f.write(" ".join(chars[i:i + 20]) + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(work, "tokenizer"), model_type="bpe",
        vocab_size=args.vocab, character_coverage=1.0, byte_fallback=True, split_digits=True,
        add_dummy_prefix=bool(args.dummy_prefix) and not args.space_piece, remove_extra_whitespaces=False, normalization_rule_name="identity",
        allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        input_sentence_size=2000000, shuffle_input_sentence=True, num_threads=2,
        max_sentencepiece_length=16, minloglevel=2, user_defined_symbols=user_symbols(args))
    tok = GLM3Tokens(os.path.join(work, "tokenizer.model"))

    seqs, masks = [], []
    counts = collections.Counter()
    dropped = 0
    for c in convs:
        ids, mask = tok.conversation(c)
        if len(ids) > args.max_len:
            dropped += 1
            continue
        counts.update(ids)
        seqs.append(ids)
        masks.append(mask)

    heldout_path = args.heldout or os.path.join(work, "heldout.json")
    write_heldout(tok, counts, args.seed, heldout_path, heldout_code)
    committed = os.path.join(HERE, "heldout.json")
    if os.path.abspath(heldout_path) != committed and os.path.exists(committed):
        # The held-out items are generated from their own seed, whatever the training data; only the
        # filter "every token seen >= 10 times" depends on this run's tokenizer.
        with open(committed, encoding="utf-8") as f:
            old = [json.dumps(it["messages"], ensure_ascii=False) for it in json.load(f)["items"]]
        with open(heldout_path, encoding="utf-8") as f:
            new = {json.dumps(it["messages"], ensure_ascii=False) for it in json.load(f)["items"]}
        print(f"committed heldout.json: {sum(o in new for o in old)}/{len(old)} of its items also kept by this run's filter "
              f"({len(new)} kept); the evaluation uses the committed file")

    lens = [len(s) for s in seqs]
    print(f"sp vocab {tok.n}; conversations {len(seqs)} (dropped {dropped} > {args.max_len}); "
          f"tokens {sum(lens)}, mean len {sum(lens) / len(lens):.1f}, max {max(lens)}; "
          f"scored {sum(sum(m) for m in masks)}; {time.time() - t0:.0f} s")
    torch.save({"seqs": seqs, "masks": masks, "n_sp": tok.n}, os.path.join(work, args.out))


if __name__ == "__main__":
    main()
