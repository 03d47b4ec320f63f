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


def zh_weather_items(tok, zh_cities, n, seed=2026):
    """n Chinese weather questions with held-out cities (Chinese ones and, as the generator mixes
    them, some English ones).  heldout.json's weather questions are all English (every third item
    is Chinese, which falls on calculator questions), so this is the Chinese check."""
    g = data.Gen(seed, heldout=True, zh_cities=zh_cities)
    out = []
    for _ in range(n):
        sysm = data.tool_system(data.render_tools(g.rng, data.tool_list(g.rng, "get_current_weather")))
        episode, _ = g.tool_episode("get_current_weather", True)
        ids, mask = tok.conversation([sysm] + episode[:2])
        out.append(("zh-city", ids, scored_positions(mask)))
    return out


def fmt(res):
    return " ".join(f"{g} {a}/{n}" for g, (a, n) in sorted(res.items()))


def main():
    from model import ChatGLM, Config
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "work", "tokenizer.model"))
    ap.add_argument("--heldout", default=os.path.join(HERE, "heldout.json"))
    ap.add_argument("--zh-weather", type=int, default=0, help="also score this many Chinese weather questions (zh_weather_items)")
    args = ap.parse_args()
    ck = torch.load(args.ckpt)
    model = ChatGLM(Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    with open(args.heldout, encoding="utf-8") as f:
        heldout = json.load(f)
    tok = GLM3Tokens(args.tokenizer)
    items = probe_items(tok, heldout)
    print(f"step {ck['step']}: {fmt(probe(model, items))}")


if __name__ == "__main__":
    main()
