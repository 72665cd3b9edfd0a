#!/usr/bin/python3
"""Round trip between mixgrad and plain PyTorch (docs/interop.md), run by ctest as export_torch.

    /usr/bin/python3 tests/golden/test_export_torch.py build/mixgrad

Needs Debian's python3-torch (/usr/bin/python3); without torch it exits 77 (ctest: skipped).
The PyTorch models are the plain-torch twins of tests/golden/make_model_fixtures.py (the paper's
LanguageMixer, HF LlamaForCausalLM and OpenAIGPTLMHeadModel, with their parameter names), sized
here. For each of a flat masked mixer, a Llama and a GPT-1:

1. `mixgrad train` a tiny model for a few steps on our own generated text, `mixgrad export
   --to pytorch` and `--to hf`; torch loads each model.safetensors with a STRICT
   load_state_dict; the f32 loss of torch on a fixed batch (ids.safetensors) equals what
   `mixgrad eval --ids` prints, to 1e-6. For Llama also: HF's RoPE convention is ours (the
   exported q/k need no permutation), and permuting them as HF's Meta-conversion script does
   changes the loss, so the check would see a wrong convention.
2. Weights initialised by torch and saved by torch are imported with `mixgrad import` (pytorch
   layout + our config.json / run YAML + tokenizer.bpe for the mixer, hf layout + HF config.json
   + tokenizer.json for Llama and GPT) and `mixgrad eval --ids` gives torch's loss, to 1e-6.
3. An import with a missing tensor fails, names it, and leaves no output directory.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("skipped: torch is not importable by", sys.executable, "(apt-get install python3-torch)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_model_fixtures as ref  # noqa: E402
from make_fixtures import save_safetensors  # noqa: E402

TOL = 1e-6
D, L, N, HEADS = 16, 2, 16, 2
STRUCT_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}


def load_safetensors(path):
    """The tensors of a safetensors file (by hand: Debian has no safetensors package)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[8 + n + b:8 + n + e]), dtype=STRUCT_DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def run(*args, expect_ok=True):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, errors="replace")
    if expect_ok and p.returncode != 0:
        raise SystemExit(f"FAILED: {' '.join(map(str, args))}\n{p.stdout}\n{p.stderr}")
    return p


def mixgrad_loss(mixgrad, ckpt, ids_path):
    out = run(mixgrad, "eval", "--checkpoint", ckpt, "--ids", ids_path).stdout
    m = re.search(r"loss ([0-9.]+) nats", out)
    assert m, out
    return float(m.group(1))


class TiedGpt(ref.OpenAIGPTLMHeadModel):
    """HF's OpenAIGPTLMHeadModel has an lm_head whose weight IS tokens_embed.weight, so its
    state_dict lists both names."""

    def __init__(self, heads):
        super().__init__(heads=heads)
        self.lm_head = torch.nn.Linear(D, ref.V, bias=False)
        self.lm_head.weight = self.transformer.tokens_embed.weight


def torch_model(kind):
    if kind == "masked_mixer":
        return ref.LanguageMixer("flat")
    if kind == "llama":
        return ref.LlamaForCausalLM(heads=HEADS)
    return TiedGpt(HEADS)


def torch_loss(model, ids, pad_id):
    with torch.no_grad():
        return float(ref.lm_loss(model(ids), ids, pad_id))


def hf_meta_permute(w, heads):
    """HF's convert_llama_weights_to_hf permute(): Meta's interleaved rotary pairs -> rotate_half."""
    d1, d2 = w.shape
    return w.view(heads, d1 // heads // 2, 2, d2).transpose(1, 2).reshape(d1, d2)


def our_to_file_ids(tok):
    """Our id -> the tokenizer.json's id: the 256 bytes, one token per merge, then eos and pad
    (data/hf_tokenizer_json.h)."""
    chars, n = [], 0
    for b in range(256):
        printable = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF
        chars.append(chr(b if printable else 256 + n))
        n += 0 if printable else 1
    vocab = tok["model"]["vocab"]
    out = [vocab[c] for c in chars]
    for mrg in tok["model"]["merges"]:
        a, b = mrg if isinstance(mrg, list) else mrg.split(" ")
        out.append(vocab[a + b])
    specials = {t["content"]: t["id"] for t in tok["added_tokens"]}
    out += [specials["<|endoftext|>"], specials["<|pad|>"]]
    assert sorted(out) == list(range(len(out)))
    return out


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: test_export_torch.py PATH/TO/mixgrad")
    mixgrad = os.path.abspath(sys.argv[1])
    torch.manual_seed(0)
    work = tempfile.mkdtemp(prefix="mg_export_torch_")
    failures = []
    try:
        # Our own training text: sentences from a small fixed grammar.
        g = torch.Generator().manual_seed(1)
        words = "the a mixer token matrix reads sees every window lower half learns writes small big".split()
        docs = []
        for _ in range(120):
            k = int(torch.randint(6, 14, (1,), generator=g))
            docs.append(" ".join(words[int(i)] for i in torch.randint(len(words), (k,), generator=g)) + ".")
        corpus = os.path.join(work, "corpus.txt")
        with open(corpus, "w") as f:
            f.write("<|endoftext|>".join(docs))

        vocab = 300
        ref.V, ref.D, ref.L, ref.N, ref.FFN_MULT = vocab, D, L, N, 4
        ids = torch.randint(0, 256, (3, N), generator=g)  # bytes: never the pad token
        ids_path = os.path.join(work, "ids.safetensors")
        save_safetensors(ids_path, [("ids", ids)], {})

        for kind in ("masked_mixer", "llama", "gpt"):
            cfg = os.path.join(work, f"{kind}.yaml")
            with open(cfg, "w") as f:
                f.write(f"name: {kind}\nmodel:\n  kind: {kind}\n  d_model: {D}\n  n_layers: {L}\n  n_ctx: {N}\n"
                        f"  n_heads: {HEADS}\n  mixer_form: flat\n"
                        f"data:\n  format: text\n  path: {corpus}\n  vocab_size: {vocab}\n  cache_dir: {work}/cache\n"
                        f"  validation:\n    mode: first\n    count: 8\n"
                        f"train:\n  batch_size: 4\n  steps: 3\n  lr: 0.01\n  warmup_steps: 0\n  eval_every: 1000\n"
                        f"  log_every: 1000\n  checkpoint_every: 1000\n  threads: 1\n")
            rundir = os.path.join(work, f"run_{kind}")
            run(mixgrad, "train", cfg, "--out-dir", rundir)
            ckpt = os.path.join(rundir, "checkpoint.safetensors")
            want = mixgrad_loss(mixgrad, ckpt, ids_path)

            # 1. exported weights in torch, strict load
            for layout in ("pytorch", "hf"):
                out = os.path.join(work, f"export_{kind}_{layout}")
                run(mixgrad, "export", "--checkpoint", ckpt, "--to", layout, out)
                conf = json.load(open(os.path.join(out, "config.json")))
                pad_id = conf["pad_token_id"]
                m = torch_model(kind)
                m.load_state_dict(load_safetensors(os.path.join(out, "model.safetensors")), strict=True)
                got = torch_loss(m, ids, pad_id)
                ok = abs(got - want) <= TOL
                print(f"{kind:13s} export --to {layout:7s}: mixgrad eval {want:.9f}, torch {got:.9f}, "
                      f"|diff| {abs(got - want):.2e} {'ok' if ok else 'FAIL'}")
                if not ok:
                    failures.append(f"{kind} export {layout}")
                if kind == "llama" and layout == "hf":
                    assert conf["model_type"] == "llama" and conf["hidden_size"] == D and conf["num_attention_heads"] == HEADS
                if kind == "gpt" and layout == "hf":
                    assert conf["model_type"] == "openai-gpt" and conf["n_embd"] == D and conf["afn"] == "gelu"

            # 2. torch-initialised weights imported
            torch.manual_seed({"masked_mixer": 11, "llama": 12, "gpt": 13}[kind])
            m = torch_model(kind)
            if kind != "masked_mixer":  # HF's init: N(0, 0.02) for every matrix
                with torch.no_grad():
                    for name, p in m.named_parameters():
                        # Llama's attention larger, so it depends on position and a wrong RoPE
                        # convention shows in the loss (checked below).
                        std = 0.5 if name.endswith(("q_proj.weight", "k_proj.weight")) else \
                            0.3 if name.endswith(("v_proj.weight", "o_proj.weight", "lm_head.weight")) else \
                            1.0 if name.endswith("embed_tokens.weight") else 0.02
                        p.normal_(std=std) if p.dim() == 2 else None
            weights_dir = os.path.join(work, f"torch_{kind}")
            os.makedirs(weights_dir)
            weights = os.path.join(weights_dir, "model.safetensors")
            save_safetensors(weights, list(m.state_dict().items()), {"format": "pt"})
            export_hf = os.path.join(work, f"export_{kind}_hf")
            export_pt = os.path.join(work, f"export_{kind}_pytorch")
            want = torch_loss(m, ids, json.load(open(os.path.join(export_hf, "config.json")))["pad_token_id"])
            imports = {
                "masked_mixer": [("pytorch", os.path.join(export_pt, "config.json"), os.path.join(rundir, "tokenizer.bpe")),
                                 ("pytorch", os.path.join(rundir, "config.yaml"), os.path.join(export_pt, "tokenizer.json"))],
                "llama": [("hf", os.path.join(export_hf, "config.json"), os.path.join(export_hf, "tokenizer.json"))],
                "gpt": [("hf", os.path.join(export_hf, "config.json"), os.path.join(export_hf, "tokenizer.json"))],
            }[kind]
            for i, (layout, config, tok) in enumerate(imports):
                imp = os.path.join(work, f"import_{kind}_{i}")
                run(mixgrad, "import", "--from", layout, weights, "--config", config, "--tokenizer", tok, "--out", imp)
                got = mixgrad_loss(mixgrad, os.path.join(imp, "checkpoint.safetensors"), ids_path)
                ok = abs(got - want) <= TOL
                print(f"{kind:13s} import --from {layout:7s} ({os.path.basename(config)}, {os.path.basename(tok)}): "
                      f"torch {want:.9f}, mixgrad eval {got:.9f}, |diff| {abs(got - want):.2e} {'ok' if ok else 'FAIL'}")
                if not ok:
                    failures.append(f"{kind} import {layout}")
            if kind == "llama":
                # HF's rotate_half convention is ours: the import above needed no q/k permutation,
                # and applying the one HF's conversion script applies to Meta's weights changes
                # the loss, so a wrong convention would have shown.
                sd = dict(m.state_dict())
                for k in sd:
                    if k.endswith(("q_proj.weight", "k_proj.weight")):
                        sd[k] = hf_meta_permute(sd[k], HEADS)
                m2 = torch_model(kind)
                m2.load_state_dict(sd, strict=True)
                permuted = torch_loss(m2, ids, json.load(open(os.path.join(export_hf, "config.json")))["pad_token_id"])
                print(f"{'':13s} torch with q/k permuted as for Meta weights: {permuted:.9f} (differs by "
                      f"{abs(permuted - want):.2e})")
                if abs(permuted - want) < 1e-3:
                    failures.append("llama: the q/k permutation does not change the loss; the RoPE check is blind")

            # 3. a missing tensor: one error naming it, no output directory
            sd = dict(m.state_dict())
            victim = sorted(sd)[len(sd) // 2]
            del sd[victim]
            bad_dir = os.path.join(work, f"bad_{kind}")
            os.makedirs(bad_dir)
            bad = os.path.join(bad_dir, "model.safetensors")
            save_safetensors(bad, list(sd.items()), {})
            layout, config, tok = imports[0]
            imp = os.path.join(work, f"import_bad_{kind}")
            p = run(mixgrad, "import", "--from", layout, bad, "--config", config, "--tokenizer", tok, "--out", imp,
                    expect_ok=False)
            if p.returncode == 0 or victim not in p.stderr or os.path.exists(imp) or \
                    any(n.startswith(f"import_bad_{kind}.tmp") for n in os.listdir(work)):
                failures.append(f"{kind}: import without {victim}: rc {p.returncode}, stderr {p.stderr!r}")
            else:
                print(f"{kind:13s} import without {victim}: refused, no output left")

        # 4. a tokenizer.json whose ids are not ours (the HF trainer's layout: specials first,
        # then the byte alphabet in character order, then merges): import reorders the
        # embedding and lm_head rows, so mixgrad on our ids = torch on the file's ids.
        theirs_path = os.path.join(HERE, "hf_tokenizer", "theirs.tokenizer.json")
        file_id_of = our_to_file_ids(json.load(open(theirs_path)))
        v = len(file_id_of)
        ref.V = v
        torch.manual_seed(14)
        m = torch_model("masked_mixer")
        weights_dir = os.path.join(work, "torch_theirs")
        os.makedirs(weights_dir)
        weights = os.path.join(weights_dir, "model.safetensors")
        save_safetensors(weights, list(m.state_dict().items()), {"format": "pt"})
        with open(os.path.join(weights_dir, "config.json"), "w") as f:
            json.dump({"model_type": "mixgrad_masked_mixer", "vocab_size": v, "d_model": D, "n_layers": L,
                       "n_ctx": N, "mixer_form": "flat"}, f)
        ours_ids = torch.randint(0, v - 2, (3, N), generator=g)  # bytes and merges; the specials are last
        ours_path = os.path.join(work, "ids_theirs.safetensors")
        save_safetensors(ours_path, [("ids", ours_ids)], {})
        file_ids = torch.tensor(file_id_of)[ours_ids]
        want = torch_loss(m, file_ids, file_id_of[-1])  # pad: our last id
        imp = os.path.join(work, "import_theirs")
        p = run(mixgrad, "import", "--from", "pytorch", weights, "--tokenizer", theirs_path, "--out", imp)
        got = mixgrad_loss(mixgrad, os.path.join(imp, "checkpoint.safetensors"), ours_path)
        ok = abs(got - want) <= TOL and (file_ids != ours_ids).any()
        print(f"masked_mixer  import with theirs.tokenizer.json (ids permuted): torch {want:.9f}, mixgrad eval "
              f"{got:.9f}, |diff| {abs(got - want):.2e} {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append("import with a permuted tokenizer.json")
        if "note:" not in p.stderr:
            failures.append("import with a GPT-2 pre-tokenizer printed no note")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        raise SystemExit("FAILED: " + "; ".join(failures))
    print("all round trips agree")


if __name__ == "__main__":
    main()
