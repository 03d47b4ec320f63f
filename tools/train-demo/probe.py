"""A quick PyTorch-side check of a checkpoint on the held-out set, cheap enough to run at every
training checkpoint (a few seconds).

For each held-out tool question it scores the reference reply (the tool name line and the
tool_call block) with teacher forcing: the reply is "exact" when the model's argmax is the
reference token at every position, which is what greedy decoding would write.  The stop token
after the reply is not required (training ends a call with <|observation|> or, 15% of the time,
with eos).  Code requests are scored the same way on their interpreter block.  This is only a
progress signal for training; the numbers that count come from eval.ts through our engine.

  /usr/bin/python3 tools/train-demo/probe.py --ckpt tools/train-demo/work/ckpt.pt
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
from prepare import GLM3Tokens  # noqa: E402


def scored_positions(mask):
    """Positions of the scored reply tokens, without the final stop token (see above)."""
    return [t for t, m in enumerate(mask) if m][:-1]


def probe_items(tok, heldout):
    """(group, ids, scored positions) for each held-out item."""
    out = []
    for it in heldout["items"]:
        if it["kind"] == "nofit":
            continue
        if it["kind"] == "tool":
            msgs = it["observation_messages"][:3]
            group = "call-zh" if it.get("zh") else "call-en"
        else:
            msgs = it["messages"] + [data.msg("assistant", "```python\n" + it["expected"]["code"] + "\n```", "interpreter")]
            group = "code"
        ids, mask = tok.conversation(msgs)
        out.append((group, ids, scored_positions(mask)))
    return out


@torch.no_grad()
def probe(model, items):
    """{"city": [exact, n], "number": [...], "code": [...]}"""
    res = {}
    was_training = model.training
    model.eval()
    for group, ids, scored in items:
        logits = model(torch.tensor([ids]))[0]
        pred = logits.argmax(-1)
        ok = all(int(pred[t - 1]) == ids[t] for t in scored)
        r = res.setdefault(group, [0, 0])
        r[0] += int(ok)
        r[1] += 1
    model.train(was_training)
    return res


@torch.no_grad()
def detail(model, tok, heldout):
    """Teacher-forced per-token accuracy on held-out calls, split into the tool-name line, the first
    token of the name (where the tool is chosen) and the tool_call block: a finer signal than
    probe() early in a run."""
    model.eval()
    acc = {}
    for it in heldout["items"]:
        if it["kind"] != "tool":
            continue
        msgs = it["observation_messages"][:3]
        pre_ids = tok.prompt(msgs[:2])  # ends with <|assistant|>
        ids, mask = tok.conversation(msgs)
        name_len = len(tok.sp.encode(msgs[2]["metadata"] + "\n"))
        scored = scored_positions(mask)
        pred = model(torch.tensor([ids]))[0].argmax(-1)
        lang = "zh" if it.get("zh") else "en"
        for j, t in enumerate(scored):
            part = "first" if j == 0 else "name" if j < name_len else "call"
            key = f"{part}-{lang}"
            a = acc.setdefault(key, [0, 0])
            a[0] += int(int(pred[t - 1]) == ids[t])
            a[1] += 1
        assert ids[:len(pre_ids)] == pre_ids
    return " ".join(f"{k} {a / n:.2f}" for k, (a, n) in sorted(acc.items()))


@torch.no_grad()
def first_piece(model, tok, heldout):
    """Where the tool is chosen: the first piece of the tool-name line.  Reports how often the model's
    argmax there is the right piece, the pieces it writes most, and how often the right name's first
    piece has the highest logit among the declared names' first pieces (what constrained decoding
    lets it choose from)."""
    import collections
    model.eval()
    preds = collections.Counter()
    right = among = n = 0
    for it in heldout["items"]:
        if it["kind"] != "tool":
            continue
        logits = model(torch.tensor([tok.prompt(it["observation_messages"][:2])]))[0, -1]
        want = tok.sp.encode(it["expected"]["tool"] + "\n")[0]
        p = int(logits.argmax())
        preds[tok.sp.id_to_piece(p) if p < tok.n else str(p)] += 1
        firsts = {tok.sp.encode(t["function"]["name"] + "\n")[0] for t in it["tools"]}
        right += int(p == want)
        among += int(max(firsts, key=lambda i: float(logits[i])) == want)
        n += 1
    return (f"first piece right {right}/{n}; right among the declared names' first pieces {among}/{n}; "
            f"written most: {preds.most_common(4)}")


def fmt(res):
    return " ".join(f"{g} {a}/{n}" for g, (a, n) in sorted(res.items()))


def main():
    from model import ChatGLM, Config
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "work", "tokenizer.model"))
    ap.add_argument("--heldout", default=os.path.join(HERE, "heldout.json"))
    ap.add_argument("--detail", action="store_true", help="also per-token accuracy on the name line and the call (detail()) "
                                                          "and the first piece of the name (first_piece())")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ck = torch.load(args.ckpt)
    model = ChatGLM(Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    with open(args.heldout, encoding="utf-8") as f:
        heldout = json.load(f)
    tok = GLM3Tokens(args.tokenizer)
    items = probe_items(tok, heldout)
    print(f"step {ck['step']}: {fmt(probe(model, items))}")
    if args.detail:
        print("token accuracy:", detail(model, tok, heldout))
        print("first piece:", first_piece(model, tok, heldout))


if __name__ == "__main__":
    main()
