"""How fast does a model shape learn to copy?  A synthetic check behind the demo model's head width.

  /usr/bin/python3 tools/train-demo/induction.py --heads 4 --kv-channels 64 [--steps 400] [--alphabet 200]

Each sequence is: a random filler of 0-29 tokens, a random sequence A of 20 tokens, a separator,
then A again; the loss and accuracy are on the second A, which only copying can predict (an
"induction head": find where the current token occurred before and emit the token that followed
it).  Batches of 32 sequences, AdamW at --lr with a 50-step warmup, bfloat16 autocast, one thread.
Measured 2026-11-29 (README "Experiments"): with an alphabet of 200 tokens, 8 heads x 32 channels
(the first demo model's shape) reached 27% copy accuracy after 400 steps, 8 x 64 99% after 300,
4 x 64 99.9% after 200.  Caveat (measured 2026-12-05): A is always 20 tokens, so the copy is always
21 positions back and a head that looks a fixed distance back solves this task without reading
content; with lengths varied per batch (lookup.py --copy-lengths 4,32) the 4 x 64 shape had not
started after 2,000 steps.  These figures rank shapes by how fast they find that shortcut.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ChatGLM, Config  # noqa: E402


def copy_sequences(batch, alphabet, length=20, sep=4005):
    """Random filler, A, the separator, A again; returns the ids and the position of the second A."""
    a = torch.randint(10, 10 + alphabet, (batch, length))
    filler = torch.randint(10, 10 + alphabet, (batch, int(torch.randint(0, 30, ()))))
    ids = torch.cat([torch.full((batch, 1), 1), filler, a, torch.full((batch, 1), sep), a], 1)
    return ids, ids.shape[1] - length


def update(model, opt, logits, target):
    """One optimizer step on the cross-entropy of logits against target; returns (loss, accuracy)."""
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item(), (logits.argmax(-1) == target).float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-channels", type=int, default=32)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--alphabet", type=int, default=200, help="how many distinct tokens A is drawn from")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    cfg = Config(padded_vocab_size=4096, num_attention_heads=args.heads, kv_channels=args.kv_channels,
                 rope_base=args.rope_base)
    model = ChatGLM(cfg)
    model.init_weights(args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    B, L, sep = 32, 20, 4005
    t0 = time.time()
    accs = []
    for s in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (s + 1) / 50)
        ids, first = copy_sequences(B, args.alphabet, L, sep)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model.transformer.output_layer(model.hidden(ids)[:, first:-1])
        target = ids[:, first + 1:]  # the first token of the second A cannot be copied yet: not scored
        loss, acc = update(model, opt, logits, target)
        accs.append(acc)
        if (s + 1) % 100 == 0:
            print(f"heads {args.heads} x {args.kv_channels}: step {s + 1} loss {loss:.3f} "
                  f"copy accuracy (mean of last 100 steps) {sum(accs[-100:]) / 100:.3f}  {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
