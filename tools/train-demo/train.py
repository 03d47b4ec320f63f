"""Train the tiny ChatGLM3-architecture demo model on the prepared synthetic corpus.

  /usr/bin/python3 tools/train-demo/train.py [--minutes 54] [--steps N] [--threads 2]

The defaults are the reading-tools recipe's fifth run (README "the fourth and fifth runs"; the
committed model's run is reproduced from git commit 2ceedda, README "Reproduce the committed model").  The learning-rate schedule
runs over a wall-clock budget (--minutes) so that the run ends in time on a busy machine; the
number of steps actually taken is logged (work/train-log.json), and --steps N runs exactly N steps
with the same seeded data order and the schedule counted in steps (close to, not bit-identical
with, a timed run of N steps).  At each checkpoint probe.py's held-out check is printed.  A checkpoint is saved
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
from prepare import GLM3Tokens  # noqa: E402
from probe import fmt, probe, probe_items  # noqa: E402

WORK = os.path.join(HERE, "work")


def make_config(n_sp, args):
    n = n_sp + 9  # the 9 ChatGLM3 specials follow the SentencePiece vocabulary
    padded = ((n + 255) // 256) * 256
    return Config(padded_vocab_size=padded, rope_base=args.rope_base, num_attention_heads=args.heads,
                  kv_channels=args.kv_channels, num_layers=args.layers)


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


def copy_batch(g, tokens_per_batch, tok, vocab, weights):
    """A batch of repeat-after-me drills over random token sequences, in the ChatGLM3 layout:
    [gMASK] sop <|user|> \n X <|assistant|> \n X eos, the loss on the assistant's copy of X.
    X is drawn from the training data's own token frequencies, so the drill covers the pieces that
    cities and numbers are made of.  Nothing but copying can predict X, which is what makes the
    model build its copying heads in minutes (README 'Training run')."""
    gmask, sop, user, assistant = tok.special["[gMASK]"], tok.special["sop"], tok.role("user"), tok.role("assistant")
    nl = tok.sp.encode("\n")  # the empty metadata line after each role token
    n = int(torch.randint(4, 33, (1,), generator=g))
    rows = max(1, tokens_per_batch // (2 * n + 2 * len(nl) + 5))
    x = vocab[torch.multinomial(weights, rows * n, replacement=True, generator=g)].view(rows, n)
    col = lambda v: torch.full((rows, 1), v, dtype=torch.long)  # noqa: E731
    nls = torch.tensor(nl, dtype=torch.long).expand(rows, len(nl))
    ids = torch.cat([col(gmask), col(sop), col(user), nls, x, col(assistant), nls, x, col(2)], 1)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, 4 + 2 * len(nl) + n:] = True  # the copy and the eos after it
    return ids, mask[:, 1:]


def lookup_batch(g, tokens_per_batch, tok, vocab, weights):
    """A batch of look-up drills over random token sequences, the choosing step of a tool call in
    miniature: a system message lists K entries "name: key" (name 1-3 random tokens, key 3-5),
    the user message holds a 2-token span of one entry's key between random filler tokens, and the
    assistant answers that entry's name.  As in a tool list the name comes BEFORE the words that
    identify it (a tool's name precedes its description), so the model must find the key that
    matches the question and read back what stood in front of it, not what followed it (which the
    copy drill already teaches).  The loss is on the answer and the eos after it."""
    gmask, sop, system, user, assistant = (tok.special["[gMASK]"], tok.special["sop"], tok.role("system"),
                                           tok.role("user"), tok.role("assistant"))
    nl = tok.sp.encode("\n")
    sep = tok.sp.encode(":")
    k = int(torch.randint(2, 7, (1,), generator=g))  # entries
    nn = int(torch.randint(1, 4, (1,), generator=g))  # name tokens
    nk = int(torch.randint(3, 6, (1,), generator=g))  # key tokens
    nf = int(torch.randint(0, 4, (1,), generator=g))  # filler tokens each side of the query span
    entry = nn + len(sep) + nk + len(nl)
    length = 3 + len(nl) + k * entry + 1 + len(nl) + 2 * nf + 2 + 1 + len(nl) + nn + 1
    rows = max(1, tokens_per_batch // length)
    def draw(n):
        if n == 0:
            return torch.zeros(rows, 0, dtype=torch.long)
        return vocab[torch.multinomial(weights, rows * n, replacement=True, generator=g)].view(rows, n)
    col = lambda v: torch.full((rows, 1), v, dtype=torch.long)  # noqa: E731
    rep = lambda t: torch.tensor(t, dtype=torch.long).expand(rows, len(t))  # noqa: E731
    names = draw(k * nn).view(rows, k, nn)
    keys = draw(k * nk).view(rows, k, nk)
    parts = [col(gmask), col(sop), col(system), rep(nl)]
    for e in range(k):
        parts += [names[:, e], rep(sep), keys[:, e], rep(nl)]
    pick = torch.randint(0, k, (rows,), generator=g)
    start = torch.randint(0, nk - 1, (rows,), generator=g)
    r = torch.arange(rows)
    span = torch.stack([keys[r, pick, start], keys[r, pick, start + 1]], 1)
    parts += [col(user), rep(nl), draw(nf), span, draw(nf), col(assistant), rep(nl)]
    head = torch.cat(parts, 1)
    ids = torch.cat([head, names[r, pick], col(2)], 1)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, head.shape[1]:] = True
    return ids, mask[:, 1:]


def save_plot(log, path, drill_steps=0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # the copy batches mixed in after the drills (--copy-mix) would hide the data's curve
    log = [e for e in log if not (e.get("copy") and e["step"] > drill_steps)]
    steps = [e["step"] for e in log]
    loss = [e["loss"] for e in log]
    k = 20
    smooth = [sum(loss[max(0, i - k + 1): i + 1]) / len(loss[max(0, i - k + 1): i + 1]) for i in range(len(loss))]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, loss, alpha=0.3, label="batch loss")
    ax.plot(steps, smooth, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    if drill_steps:
        ax.axvline(drill_steps, color="gray", linestyle="--", linewidth=1, label="end of the drills")
    ax.set_ylabel("cross-entropy on scored tokens (nats)")
    ax.set_title("chatglm3-demo training loss")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=54.0)
    ap.add_argument("--steps", type=int, default=0, help="fixed step count (overrides --minutes for the schedule)")
    ap.add_argument("--threads", type=int, default=2,
                    help="2 (the fourth and fifth runs): both cores of the 2-core machine, about 1.5x the steps of one thread")
    ap.add_argument("--tokens-per-batch", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--resume", default="", help="start from this checkpoint's weights (and optimizer state when saved)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--data", default="train.pt", help="token file in work/ (prepare.py --out)")
    ap.add_argument("--rope-base", type=float, default=10000.0,
                    help="RoPE base, written as config.json rope_ratio = base / 10000 (see README: why 100)")
    ap.add_argument("--tie", action="store_true",
                    help="train output_layer and the embedding as one matrix (both are still written); see README")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-channels", type=int, default=64, help="channels per head (ChatGLM's kv_channels)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                    help="bf16: matmuls under torch.autocast in bfloat16 (weights, optimizer and softmax stay "
                         "float32); about 4x faster than fp32 on this AVX512-BF16 machine (README 'Training run')")
    ap.add_argument("--work", default=WORK, help="folder with the data and tokenizer; checkpoints and log go here")
    ap.add_argument("--plot", default="", help="loss curve PNG (default: loss.png next to this script for the "
                                               "default --work, else in --work)")
    ap.add_argument("--heldout", default=os.path.join(HERE, "heldout.json"),
                    help="held-out set for probe.py's check at each checkpoint ('' to skip)")
    ap.add_argument("--copy-warmup", type=int, default=600,
                    help="steps of random-token repeat-after-me drills before the data (copy_batch); not repeated by --resume")
    ap.add_argument("--copy-mix", type=float, default=0.1,
                    help="share of the steps after the drills that are copy-drill batches again, so that the copying "
                         "heads the drill built are kept while the data is learnt (README 'the fourth and fifth runs')")
    ap.add_argument("--lookup-drill", type=int, default=0,
                    help="steps of random-token look-up drills (lookup_batch) after the copy drill; not repeated by --resume")
    ap.add_argument("--short-first", type=float, default=0.15,
                    help="fraction of the time budget (after the drills) trained on the shorter half of the conversations only")
    ap.add_argument("--first-data", default="", help="token file in work/ to train on for the first --first-minutes")
    ap.add_argument("--first-minutes", type=float, default=0.0,
                    help="minutes on --first-data before switching to --data (a copying warm-up: see README)")
    args = ap.parse_args()
    work = args.work
    plot = args.plot or (os.path.join(HERE, "loss.png") if os.path.abspath(work) == WORK else os.path.join(work, "loss.png"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    blob = torch.load(os.path.join(work, args.data))
    seqs, masks = blob["seqs"], blob["masks"]
    main_data = (seqs, masks)
    if args.first_data:
        first = torch.load(os.path.join(work, args.first_data))
        assert first["n_sp"] == blob["n_sp"], "--first-data was tokenized with another tokenizer"
        seqs, masks = first["seqs"], first["masks"]
    cfg = make_config(blob["n_sp"], args)
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

    tok = GLM3Tokens(os.path.join(work, "tokenizer.model"))
    probe_set = None
    if args.heldout and os.path.exists(args.heldout):
        with open(args.heldout, encoding="utf-8") as f:
            probe_set = probe_items(tok, json.load(f))[::3]  # a third of the set: seconds, not a minute, per checkpoint
    probes = prior.get("probes", []) if prior is not None else []

    drill_steps = args.copy_warmup if prior is None else 0  # a resumed run has had its drill
    lookup_steps = args.lookup_drill if prior is None else 0
    if drill_steps or args.copy_mix > 0 or lookup_steps:
        # token frequencies of the data: the drills draw their random tokens with them
        counts = torch.zeros(blob["n_sp"], dtype=torch.float64)
        for sq in seqs[:20000]:
            t = torch.tensor(sq)
            counts += torch.bincount(t[t < blob["n_sp"]], minlength=blob["n_sp"]).double()
        counts[:3] = 0  # unk, bos, eos
    if drill_steps or args.copy_mix > 0:
        drill_vocab = torch.nonzero(counts).view(-1)
        drill_weights = counts[drill_vocab].float()
        drill_gen = torch.Generator().manual_seed(args.seed)
    if lookup_steps:
        lookup_vocab = torch.nonzero(counts).view(-1)
        # flatter than the data's frequencies: a key must rarely repeat by chance in the list
        lookup_weights = counts[lookup_vocab].float().sqrt()
        lookup_gen = torch.Generator().manual_seed(args.seed + 1)
    # Curriculum: after the drills, the shorter half of the conversations first (fewer and smaller tools).
    median_len = sorted(len(sq) for sq in seqs)[len(seqs) // 2]
    short_idx = [i for i, sq in enumerate(seqs) if len(sq) <= median_len]
    short_seqs, short_masks = [seqs[i] for i in short_idx], [masks[i] for i in short_idx]
    short_until = None  # elapsed seconds when the short phase ends (set when the drills end)

    log = []
    prior_log = []
    if prior is not None and os.path.exists(os.path.join(work, "train-log.json")):
        with open(os.path.join(work, "train-log.json")) as f:
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
        drilling = step < drill_steps + lookup_steps
        if not drilling and short_until is None and args.short_first > 0 and not args.first_data:
            short_until = (time.time() - t0) + args.short_first * budget if not args.steps else step + args.short_first * args.steps
            short_q = batches(short_seqs, short_masks, args.tokens_per_batch, rng)
            print(f"step {step}: the shorter half of the conversations (<= {median_len} tokens) first", flush=True)
        in_short = short_until is not None and (step if args.steps else time.time() - t0) < short_until
        if not queue and not in_short:
            queue = batches(seqs, masks, args.tokens_per_batch, rng)
            epoch += 1
        copying = step < drill_steps or (not drilling and args.copy_mix > 0 and rng.random() < args.copy_mix)
        if copying:
            ids, tmask = copy_batch(drill_gen, args.tokens_per_batch, tok, drill_vocab, drill_weights)
        elif drilling:
            ids, tmask = lookup_batch(lookup_gen, args.tokens_per_batch, tok, lookup_vocab, lookup_weights)
        elif in_short:
            if not short_q:
                short_q = batches(short_seqs, short_masks, args.tokens_per_batch, rng)
            ids, tmask = collate(short_q.pop(), short_seqs, short_masks)
        else:
            idx = queue.pop()
            ids, tmask = collate(idx, seqs, masks)
        elapsed = time.time() - t0
        progress = step / args.steps if args.steps else elapsed / budget
        lr = lr_at(step, progress)
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            h = model.hidden(ids)[:, :-1]
            sel = h[tmask]
            logits = model.transformer.output_layer(sel)
        target = ids[:, 1:][tmask]
        loss = F.cross_entropy(logits.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        log.append({"step": base_step + step, "loss": loss.item(), "lr": lr, "t": round(time.time() - t0, 1),
                    "tokens": int(ids.numel()), "scored": int(tmask.sum()), "copy": bool(copying)})
        if step % 20 == 0:
            recent = log[-20:]
            print(f"step {step} epoch {epoch} loss {sum(e['loss'] for e in recent) / 20:.4f} lr {lr:.2e} "
                  f"t {time.time() - t0:.0f}s ({step / (time.time() - t0):.2f} steps/s)", flush=True)
        done = (args.steps and step >= args.steps) or (not args.steps and time.time() - t0 >= budget)
        if done or time.time() - last_ckpt > args.ckpt_minutes * 60:
            if probe_set is not None:
                # teacher-forced held-out check (probe.py): float32, outside autocast; it only reads the set
                res = probe(model, probe_set)
                probes.append({"step": base_step + step, "t": round(time.time() - t0, 1), **res})
                print(f"probe at step {base_step + step}: {fmt(res)}", flush=True)
            last_ckpt = time.time()
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "config": cfg.__dict__,
                        "step": base_step + step, "history": history + [{"args": vars(args), "steps": step}],
                        "probes": probes}, os.path.join(work, "ckpt.pt"))
            with open(os.path.join(work, "train-log.json"), "w") as f:
                json.dump({"args": vars(args), "resumed_from_step": base_step, "steps": step, "epochs": epoch, "seconds": round(time.time() - t0, 1),
                           "params": n_params, "probes": probes, "log": prior_log + log}, f)
            save_plot(prior_log + log, plot, drill_steps + lookup_steps)
            print(f"checkpoint at step {step}", flush=True)


if __name__ == "__main__":
    main()
