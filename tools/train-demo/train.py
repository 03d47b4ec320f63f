"""Train the tiny ChatGLM3-architecture demo model on the prepared synthetic corpus.

  /usr/bin/python3 tools/train-demo/train.py [--minutes 40] [--steps N] [--threads 2]

The learning-rate schedule runs over a wall-clock budget (--minutes) so that the run ends in time
on a busy machine; the number of steps actually taken is logged (work/train-log.json), and
--steps N replays a run of exactly N steps with the same seeded data order.  A checkpoint is saved
every few minutes (work/ckpt.pt), so an interrupted run is still usable for export.py.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import ChatGLM, Config  # noqa: E402

WORK = os.path.join(HERE, "work")


def make_config(n_sp, rope_base):
    n = n_sp + 9  # the 9 ChatGLM3 specials follow the SentencePiece vocabulary
    padded = ((n + 255) // 256) * 256
    return Config(padded_vocab_size=padded, rope_base=rope_base)


def batches(seqs, masks, tokens_per_batch, rng):
    """Length-bucketed batches (little padding), in a seeded random order."""
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), rng.random()))
    out, cur, cur_max = [], [], 0
    for i in order:
        n = len(seqs[i])
        if cur and max(cur_max, n) * (len(cur) + 1) > tokens_per_batch:
            out.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def collate(idx, seqs, masks):
    T = max(len(seqs[i]) for i in idx)
    ids = torch.zeros(len(idx), T, dtype=torch.long)
    tgt_mask = torch.zeros(len(idx), T, dtype=torch.bool)
    for r, i in enumerate(idx):
        s = seqs[i]
        ids[r, : len(s)] = torch.tensor(s)
        tgt_mask[r, : len(s)] = torch.tensor(masks[i], dtype=torch.bool)
    # position t predicts token t+1; score it when token t+1 is marked
    return ids, tgt_mask[:, 1:]


def save_plot(log, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [e["step"] for e in log]
    loss = [e["loss"] for e in log]
    k = 20
    smooth = [sum(loss[max(0, i - k + 1): i + 1]) / len(loss[max(0, i - k + 1): i + 1]) for i in range(len(loss))]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, loss, alpha=0.3, label="batch loss")
    ax.plot(steps, smooth, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy on assistant tokens (nats)")
    ax.set_title("chatglm3-demo training loss")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--steps", type=int, default=0, help="fixed step count (overrides --minutes for the schedule)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens-per-batch", type=int, default=6144)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--resume", default="", help="start from this checkpoint's weights (and optimizer state when saved)")
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--data", default="train.pt", help="token file in work/ (prepare.py --out)")
    ap.add_argument("--rope-base", type=float, default=10000.0,
                    help="RoPE base, written as config.json rope_ratio = base / 10000 (see README: why 100)")
    ap.add_argument("--tie", action="store_true",
                    help="train output_layer and the embedding as one matrix (both are still written); see README")
    ap.add_argument("--first-data", default="", help="token file in work/ to train on for the first --first-minutes")
    ap.add_argument("--first-minutes", type=float, default=0.0,
                    help="minutes on --first-data before switching to --data (a copying warm-up: see README)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    blob = torch.load(os.path.join(WORK, args.data))
    seqs, masks = blob["seqs"], blob["masks"]
    main_data = (seqs, masks)
    if args.first_data:
        first = torch.load(os.path.join(WORK, args.first_data))
        assert first["n_sp"] == blob["n_sp"], "--first-data was tokenized with another tokenizer"
        seqs, masks = first["seqs"], first["masks"]
    cfg = make_config(blob["n_sp"], args.rope_base)
    model = ChatGLM(cfg)
    if args.tie:
        # The idea: one matrix for reading and writing tokens makes "copy this token" a map that all
        # tokens share, where untied each output row learns it on its own (the committed model copies
        # digits, 10 tokens seen constantly, but not city pieces). Experiment C in the README: it did
        # not make copying appear earlier; ChatGLM files keep two tensors either way.
        model.transformer.output_layer.weight = model.transformer.embedding.word_embeddings.weight
    model.init_weights(args.seed)
    prior = None
    if args.resume:
        prior = torch.load(args.resume)
        model.load_state_dict(prior["model"])
        print(f"resumed from {args.resume} (step {prior['step']})", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params / 1e6:.2f}M, padded vocab {cfg.padded_vocab_size}, conversations {len(seqs)}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    if prior is not None and "optimizer" in prior:
        opt.load_state_dict(prior["optimizer"])
    warmup = args.warmup
    history = prior.get("history", []) if prior is not None else []
    base_step = prior["step"] if prior is not None else 0
    rng = random.Random(args.seed + base_step)  # a resumed run sees a fresh data order
    budget = args.minutes * 60.0

    def lr_at(step, progress):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    log = []
    prior_log = []
    if prior is not None and os.path.exists(os.path.join(WORK, "train-log.json")):
        with open(os.path.join(WORK, "train-log.json")) as f:
            prior_log = [e for e in json.load(f)["log"] if e["step"] <= base_step]
    t0 = time.time()
    last_ckpt = t0
    step = 0
    epoch = 0
    queue = []
    done = False
    while not done:
        if args.first_data and seqs is not main_data[0] and time.time() - t0 >= args.first_minutes * 60:
            seqs, masks = main_data  # warm-up over: the full mix from here on
            queue = []
            print(f"step {step}: switching to {args.data}", flush=True)
        if not queue:
            queue = batches(seqs, masks, args.tokens_per_batch, rng)
            epoch += 1
        idx = queue.pop()
        ids, tmask = collate(idx, seqs, masks)
        elapsed = time.time() - t0
        progress = step / args.steps if args.steps else elapsed / budget
        lr = lr_at(step, progress)
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        h = model.hidden(ids)[:, :-1]
        sel = h[tmask]
        logits = model.transformer.output_layer(sel)
        target = ids[:, 1:][tmask]
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        log.append({"step": base_step + step, "loss": loss.item(), "lr": lr, "t": round(time.time() - t0, 1),
                    "tokens": int(ids.numel()), "scored": int(tmask.sum())})
        if step % 20 == 0:
            recent = log[-20:]
            print(f"step {step} epoch {epoch} loss {sum(e['loss'] for e in recent) / 20:.4f} lr {lr:.2e} "
                  f"t {time.time() - t0:.0f}s ({step / (time.time() - t0):.2f} steps/s)", flush=True)
        done = (args.steps and step >= args.steps) or (not args.steps and time.time() - t0 >= budget)
        if done or time.time() - last_ckpt > args.ckpt_minutes * 60:
            last_ckpt = time.time()
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "config": cfg.__dict__,
                        "step": base_step + step, "history": history + [{"args": vars(args), "steps": step}]}, os.path.join(WORK, "ckpt.pt"))
            with open(os.path.join(WORK, "train-log.json"), "w") as f:
                json.dump({"args": vars(args), "resumed_from_step": base_step, "steps": step, "epochs": epoch, "seconds": round(time.time() - t0, 1),
                           "params": n_params, "log": prior_log + log}, f)
            save_plot(prior_log + log, os.path.join(HERE, "loss.png"))
            print(f"checkpoint at step {step}", flush=True)


if __name__ == "__main__":
    main()
