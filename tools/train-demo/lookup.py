"""Can the demo model's shape learn to choose a tool the way a tool list asks it to?  A synthetic check.

  /usr/bin/python3 tools/train-demo/lookup.py --order name-first|key-first [--keylen 1] [--steps 1500]

A tool list puts a tool's name BEFORE the words that identify it (its description), so choosing a
tool means: find the words of the question in the list, answer what stood in front of them.  Here
that step is bare: each sequence lists 2-5 entries of random tokens, NAME KEY... ; (name-first, as
in a tool list) or KEY... NAME ; (key-first: find the key, answer what followed it, the copy task's
step), then up to --queries questions, each entry asked at most once: a query token, one of the
entry's key tokens, an answer token (none with --no-answer-token) and the entry's name; loss and
accuracy are on the names answered only.  The first --copy-first steps are the copy task of
induction.py with sequences of --copy-lengths tokens (the default fixed length of 20 is solved by a
head that looks a fixed distance back, not by copying by content: README "Choosing a tool").
Batches of --batch (32), AdamW at --lr with a 50-step warmup, bfloat16 autocast, one thread, the
demo model's shape (4 layers, 4 heads x 64; --hidden and --heads change it).  --disjoint draws names
and keys from separate halves of the alphabet; --prev-head-init builds a previous-token head into
the initial weights.  Measured figures: README "the fourth and fifth runs" and "Choosing a tool:
how much training the look-up takes".
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from induction import copy_sequences, update  # noqa: E402
from model import ChatGLM, Config, rope_cache  # noqa: E402

SEP, QUERY, ANSWER = 4005, 4006, 4007  # tokens outside the random alphabet


def lookup_task(batch, alphabet, entries, keylen, name_first, queries, disjoint=False, answer_token=True):
    k = int(torch.randint(entries[0], entries[1] + 1, ()))
    if disjoint:  # names from the first half of the alphabet, keys from the second: roles told apart by the token
        half = alphabet // 2
        names = torch.randint(10, 10 + half, (batch, k))
        keys = torch.randint(10 + half, 10 + alphabet, (batch, k, keylen))
    else:
        names = torch.randint(10, 10 + alphabet, (batch, k))
        keys = torch.randint(10, 10 + alphabet, (batch, k, keylen))
    parts = [torch.full((batch, 1), 1)]
    for e in range(k):
        entry = [names[:, e:e + 1], keys[:, e]] if name_first else [keys[:, e], names[:, e:e + 1]]
        parts += entry + [torch.full((batch, 1), SEP)]
    r = torch.arange(batch)
    # Each entry asked at most once: a second question about it could be answered by copying the
    # first question's answer (key ANSWER name: the easy direction), whatever the order of the list.
    order = torch.argsort(torch.rand(batch, k), 1)
    for q in range(min(queries, k)):
        pick = order[:, q]
        pos = torch.randint(0, keylen, (batch,))
        parts += [torch.full((batch, 1), QUERY), keys[r, pick, pos].view(batch, 1)]
        parts += [torch.full((batch, 1), ANSWER)] if answer_token else []
        parts += [names[r, pick].view(batch, 1)]
    ids = torch.cat(parts, 1)
    n = min(queries, k)
    block = 4 if answer_token else 3  # tokens per question
    return ids, torch.arange(ids.shape[1] - block * n + block - 1, ids.shape[1], block)  # the names answered


def previous_token_head(model, cfg, scale=10.0, pairs=8):
    """Make head 0 of layer 0 attend to the previous token from the first step: its query and its KV
    group's key get constant rotary channels (bias only), rotated so that q.k peaks one position back
    (0.9996 of the head's weight on the previous token at initialisation, measured on random ids)."""
    d, nh = cfg.kv_channels, cfg.num_attention_heads
    cos, sin = rope_cache(cfg, 2)  # row 1: the rotation of each pair over one position
    qkv = model.transformer.encoder.layers[0].self_attention.query_key_value
    with torch.no_grad():
        for i in range(pairs):
            q, k = 2 * i, nh * d + 2 * i  # pair i of head 0's query and of group 0's key
            qkv.weight[q:q + 2].zero_()
            qkv.weight[k:k + 2].zero_()
            qkv.bias[q], qkv.bias[q + 1] = scale * cos[1, i], -scale * sin[1, i]  # the key's pair turned back one position
            qkv.bias[k], qkv.bias[k + 1] = scale, 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--order", choices=["name-first", "key-first"], default="name-first")
    ap.add_argument("--keylen", type=int, default=1, help="key tokens per entry (the query is one of them)")
    ap.add_argument("--entries", default="2,5", help="entries per list, drawn uniformly from this range")
    ap.add_argument("--queries", type=int, default=5, help="questions after each list (at most one per entry), each answer scored")
    ap.add_argument("--alphabet", type=int, default=200)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--copy-first", type=int, default=300, help="steps of the copy task before the look-up")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--disjoint", action="store_true", help="names and keys from separate halves of the alphabet")
    ap.add_argument("--copy-lengths", default="20,20",
                    help="length range of the copy task's sequence, drawn per batch (a fixed length lets the model "
                         "copy from a fixed distance instead of by content)")
    ap.add_argument("--no-answer-token", action="store_true",
                    help="questions QUERY KEY NAME: the name answered at the key itself, not one token later")
    ap.add_argument("--hidden", type=int, default=256, help="hidden size (the MLP is twice as wide)")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--prev-head-init", action="store_true",
                    help="start with a previous-token head (layer 0, head 0) built into the initial weights")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    cfg = Config(padded_vocab_size=4096, num_attention_heads=args.heads, kv_channels=64, hidden_size=args.hidden,
                 ffn_hidden_size=2 * args.hidden)
    model = ChatGLM(cfg)
    model.init_weights(args.seed)
    if args.prev_head_init:
        previous_token_head(model, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    entries = tuple(int(x) for x in args.entries.split(","))
    B = args.batch
    copy_lo, copy_hi = (int(x) for x in args.copy_lengths.split(","))
    t0 = time.time()
    accs = []
    for s in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (s + 1) / 50)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if s < args.copy_first:
                length = copy_lo if copy_lo == copy_hi else int(torch.randint(copy_lo, copy_hi + 1, ()))
                ids, first = copy_sequences(B, args.alphabet, length, SEP)
                logits = model.transformer.output_layer(model.hidden(ids)[:, first:-1])
                target = ids[:, first + 1:]
            else:
                ids, answers = lookup_task(B, args.alphabet, entries, args.keylen, args.order == "name-first",
                                           args.queries, args.disjoint, not args.no_answer_token)
                logits = model.transformer.output_layer(model.hidden(ids)[:, answers - 1])
                target = ids[:, answers]
        loss, acc = update(model, opt, logits, target)
        accs.append(acc)
        if (s + 1) % 100 == 0:
            task = "copy" if s < args.copy_first else f"{args.order} look-up, key of {args.keylen}"
            print(f"step {s + 1} ({task}): loss {loss:.3f} accuracy (mean of last 100 steps) "
                  f"{sum(accs[-100:]) / 100:.3f}  {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
