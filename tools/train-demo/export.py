"""Export the trained checkpoint as a Hugging Face ChatGLM3-style directory, plus reference logits.

  /usr/bin/python3 tools/train-demo/export.py [--ckpt tools/train-demo/work/ckpt.pt]

Writes models/chatglm3-demo/{config.json, model.safetensors (float16), tokenizer.model,
tokenizer_config.json} and tools/train-demo/reference-logits.json: last-position logits of a few
prompts, computed by this PyTorch code in float64 from the float16-rounded weights that were
written, i.e. exactly the numbers our engine should reproduce from the shipped file.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from model import ChatGLM, Config  # noqa: E402
from prepare import GLM3Tokens  # noqa: E402
import data  # noqa: E402
import tooldata  # noqa: E402

OUT = os.path.join(ROOT, "models", "chatglm3-demo")


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": {torch.float16: "F16", torch.float32: "F32"}[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def reference_prompts():
    tools = [{"type": "function", "function": {
        "name": "get_elevation", "description": "Look up the elevation of a given city",
        "parameters": {"type": "object", "properties": {"locale": {"type": "string", "description": "The city name"}},
                       "required": ["locale"]}}}]
    return [
        ("greeting", [data.msg("user", "Hello")]),
        ("zh-greeting", [data.msg("user", "你好")]),
        ("tool", [tooldata.tool_system(tools), data.msg("user", "What is the elevation in Lucerne?")]),
        ("code", [data.msg("user", "Compute the sum of the integers from 1 to 57.")]),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "work", "ckpt.pt"))
    ap.add_argument("--out", default=OUT, help="model directory to write (default models/chatglm3-demo)")
    ap.add_argument("--ref-out", default=os.path.join(HERE, "reference-logits.json"))
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "work", "tokenizer.model"),
                    help="the tokenizer the checkpoint was trained with (prepare.py's, in its --work)")
    args = ap.parse_args()
    out = args.out
    ck = torch.load(args.ckpt)
    cfg = Config(**ck["config"])
    os.makedirs(out, exist_ok=True)

    sd = {k: v.to(torch.float16) for k, v in ck["model"].items()}
    write_safetensors(os.path.join(out, "model.safetensors"), sd, {"format": "pt"})
    shutil.copyfile(args.tokenizer, os.path.join(out, "tokenizer.model"))
    tok = GLM3Tokens(os.path.join(out, "tokenizer.model"))
    assert tok.n + 9 <= cfg.padded_vocab_size

    config = {
        "_name_or_path": "chatglm3-tiny-demo",
        "model_type": "chatglm",
        "architectures": ["ChatGLMModel"],
        "add_bias_linear": False,
        "add_qkv_bias": True,
        "apply_query_key_layer_scaling": True,
        "apply_residual_connection_post_layernorm": False,
        "attention_dropout": 0.0,
        "attention_softmax_in_fp32": True,
        "bias_dropout_fusion": True,
        "ffn_hidden_size": cfg.ffn_hidden_size,
        "fp32_residual_connection": False,
        "hidden_dropout": 0.0,
        "hidden_size": cfg.hidden_size,
        "kv_channels": cfg.kv_channels,
        "layernorm_epsilon": cfg.layernorm_epsilon,
        "multi_query_attention": True,
        "multi_query_group_num": cfg.multi_query_group_num,
        "num_attention_heads": cfg.num_attention_heads,
        "num_layers": cfg.num_layers,
        "original_rope": True,
        # ChatGLM3 scales the RoPE base by rope_ratio (the -32k model uses 50); see train.py --rope-base.
        **({"rope_ratio": cfg.rope_base / 10000.0} if cfg.rope_base != 10000.0 else {}),
        "padded_vocab_size": cfg.padded_vocab_size,
        "post_layer_norm": True,
        "rmsnorm": True,
        "seq_length": cfg.seq_length,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "eos_token_id": 2,
        "pad_token_id": 0,
        "use_cache": True,
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({
            "name_or_path": "chatglm3-tiny-demo",
            "tokenizer_class": "ChatGLMTokenizer",
            "comment": "chatglm3 layout: SentencePiece BPE vocabulary followed by the 9 ChatGLM3 special tokens",
            "padding_side": "left",
            "remove_space": False,
            "do_lower_case": False,
            "eos_token": "</s>", "pad_token": "<unk>", "unk_token": "<unk>",
            "special_tokens": {name: tok.n + i for i, name in enumerate(
                ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"])},
        }, f, indent=2, ensure_ascii=False)
        f.write("\n")

    # Reference logits in float64 from the float16 weights just written.
    model = ChatGLM(cfg).double()
    model.load_state_dict({k: v.to(torch.float64) for k, v in sd.items()})
    model.eval()
    refs = []
    with torch.no_grad():
        for name, msgs in reference_prompts():
            ids = tok.prompt(msgs)
            logits = model(torch.tensor([ids]))[0]
            last = logits[-1]
            refs.append({"name": name, "messages": msgs, "ids": ids, "last_logits": [round(float(x), 7) for x in last],
                         "argmax_per_position": [int(x) for x in logits.argmax(-1)]})
    with open(args.ref_out, "w", encoding="utf-8") as f:
        json.dump({"model": "models/chatglm3-demo", "dtype": "float64 compute from the float16 weights", "prompts": refs},
                  f, ensure_ascii=False)
    size = os.path.getsize(os.path.join(out, "model.safetensors"))
    print(f"exported step {ck.get('step')} to {out} ({size / 1e6:.1f} MB); reference logits for {len(refs)} prompts")


if __name__ == "__main__":
    main()
