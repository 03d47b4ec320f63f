"""Generate the synthetic corpus, train the SentencePiece BPE tokenizer and tokenize the corpus.

  /usr/bin/python3 tools/train-demo/prepare.py [--conversations 150000] [--vocab 4000]

The defaults are the data of the committed model (README "Training run"); the first model's data
(README "History") used the defaults of git commit 96ea59f.

Outputs (in tools/train-demo/work/, git-ignored): tokenizer.model, train.pt (token ids + loss
masks), and tools/train-demo/heldout.json (evaluation prompts with cities/numbers never seen in training).
"""
import argparse
import collections
import json
import os
import sys

import sentencepiece as spm
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402

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


def write_heldout(tok, counts, seed, path):
    # Held-out cities: every token must have been seen (>= 20 times) in training inputs, so the
    # model has a trained embedding and output row for it; the city itself never occurs.
    def covered(name):
        texts = [f'tool_call(location="{name}")', f"What is the weather in {name}?", f"{name}天气",
                 '{"location": "' + name + '", "temperature": 3}', f"{name}现在", f"It is sunny in {name} now."]
        bad = [tok.sp.id_to_piece(t) for s in texts for t in tok.sp.encode(s) if counts[t] < 10]
        return not bad
    zh_ok = [c for c in data.HELDOUT_ZH_CANDIDATES if covered(c)]
    en_ok = [c for c in data.HELDOUT_EN if covered(c)]
    print(f"held-out cities usable: zh {len(zh_ok)}/{len(data.HELDOUT_ZH_CANDIDATES)}, en {len(en_ok)}/{len(data.HELDOUT_EN)}")
    data.HELDOUT_EN[:] = en_ok
    items = data.eval_set(seed + 1, zh_ok)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"zh_cities": zh_ok, "en_cities": en_ok, "items": items}, f, ensure_ascii=False, indent=1)



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=150000)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-len", type=int, default=640)

    ap.add_argument("--reuse-tokenizer", action="store_true",
                    help="keep work/tokenizer.model and heldout.json; only generate and tokenize new conversations")
    ap.add_argument("--mix", default="30,2,2,8,1,2,55",
                    help="weights of tool,greet,refuse,code,notool,multi,echo conversations")
    ap.add_argument("--out", default="train.pt")
    ap.add_argument("--echo-max-parts", type=int, default=8)
    ap.add_argument("--echo-quoted", type=float, default=0.5,
                    help="share of repeat-after-me answers that put each part in double quotes (data.Gen.echo)")
    ap.add_argument("--pseudo-cities", type=float, default=0.7,
                    help="share of training cities that are made-up names (data.pseudo_city), so that names "
                         "cannot be memorised and must be copied")
    ap.add_argument("--work", default=os.path.join(HERE, "work"), help="output folder (tokenizer, token files)")
    ap.add_argument("--heldout", default=os.path.join(HERE, "heldout.json"), help="held-out set to write")
    ap.add_argument("--heldout-only", action="store_true", help="rebuild heldout.json from the existing tokenizer and train.pt")
    args = ap.parse_args()
    work = args.work
    if args.heldout_only:
        tok = GLM3Tokens(os.path.join(work, "tokenizer.model"))
        blob = torch.load(os.path.join(work, "train.pt"))
        counts = collections.Counter()
        for s in blob["seqs"]:
            counts.update(s)
        write_heldout(tok, counts, args.seed, args.heldout)
        return
    os.makedirs(work, exist_ok=True)

    gen = data.Gen(args.seed, echo_max_parts=args.echo_max_parts, pseudo_cities=args.pseudo_cities,
                   echo_quoted=args.echo_quoted)
    weights = [float(x) for x in args.mix.split(",")]
    convs, conv_cities = [], []
    for _ in range(args.conversations):
        convs.append(gen.conversation(weights))
        conv_cities.append(sorted(set(gen.used_cities), key=len, reverse=True))
    if args.reuse_tokenizer:
        tok = GLM3Tokens(os.path.join(work, "tokenizer.model"))
        seqs, masks = [], []
        for c in convs:
            ids, mask = tok.conversation(c)
            if len(ids) <= args.max_len:
                seqs.append(ids)
                masks.append(mask)
        lens = [len(s) for s in seqs]
        print(f"conversations {len(seqs)}; tokens {sum(lens)}, mean len {sum(lens) / len(lens):.1f}; "
              f"scored {sum(sum(m) for m in masks)}")
        torch.save({"seqs": seqs, "masks": masks, "n_sp": tok.n}, os.path.join(work, args.out))
        return

    # Tokenizer corpus: every message text, split into lines the way the trainer reads them, with
    # the city names cut out.  Cities then tokenize into short, widely shared pieces rather than
    # whole-word pieces, so a city never seen in training is made of tokens the model has learnt
    # to copy.  The Chinese city characters are added one by one so they stay in the alphabet.
    import re
    cities = sorted(data.EN_CITIES + data.ZH_CITIES, key=len, reverse=True)
    city_re = re.compile("|".join(re.escape(c) for c in cities))
    pseudo = args.pseudo_cities > 0
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for c, used in zip(convs[:20000], conv_cities):
            for m in c:
                for line in (m["metadata"] + "\n" + m["content"]).split("\n"):
                    line = city_re.sub("", line)
                    if pseudo:  # made-up names too, longest first so "New X" goes before "X"
                        for city in used:
                            line = line.replace(city, "")
                    if line:
                        f.write(line + "\n")
        chars = sorted(set("".join(data.ZH_CITIES)))
        if pseudo:
            # Latin letters: with made-up names cut out, capitals such as J or K occur almost only
            # at the start of a city and would otherwise exist only as byte-fallback tokens.
            f.write(" ".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + "\n" + " ".join("abcdefghijklmnopqrstuvwxyz") + "\n")
            chars = sorted(set(chars) | set(data.ZH_PLACE_CHARS))
        for i in range(0, len(chars), 20):
            f.write(" ".join(chars[i:i + 20]) + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(work, "tokenizer"), model_type="bpe",
        vocab_size=args.vocab, character_coverage=1.0, byte_fallback=True, split_digits=True,
        add_dummy_prefix=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
        allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        input_sentence_size=2000000, shuffle_input_sentence=True, num_threads=2,
        max_sentencepiece_length=16, minloglevel=2)
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

    write_heldout(tok, counts, args.seed, args.heldout)

    lens = [len(s) for s in seqs]
    print(f"sp vocab {tok.n}; conversations {len(seqs)} (dropped {dropped} > {args.max_len}); "
          f"tokens {sum(lens)}, mean len {sum(lens) / len(lens):.1f}, max {max(lens)}; "
          f"scored {sum(sum(m) for m in masks)}")
    torch.save({"seqs": seqs, "masks": masks, "n_sp": tok.n}, os.path.join(work, args.out))


if __name__ == "__main__":
    main()
