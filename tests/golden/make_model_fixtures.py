#!/usr/bin/python3
"""Writes the whole-model golden fixtures that tests/test_golden_models.cpp checks mixgrad against.

Run with Debian's python3-torch (the system interpreter, not a pyenv one):

    /usr/bin/python3 tests/golden/make_model_fixtures.py

Five tiny language models, written in plain PyTorch (no transformers package) with the parameter
names of the paper's code / Hugging Face, which are also the names of mixgrad's nn/ modules:

    model_mixer_flat       the flat masked mixer, the paper's MixerBlock/LanguageMixer (docs/paper.md A.1)
    model_mixer_expanded   the expanded ("ConvForward", e = 2) token mixing (A.3)
    model_mixer_multihead  the multi-head mixing, clean semantics (A.5), with mixgrad's stacked names
    model_mixer_kernel     the kernel-k ("fully convolutional", k = 4) mixing: Conv1d(n, n, 4,
                           padding='same') sliding along the features, every tap tril-masked (A.4)
    model_llama            HF LlamaForCausalLM (B.1)
    model_gpt              HF OpenAIGPTLMHeadModel, tied lm_head, no dropout (B.2)

Per model, every floating tensor is stored twice, "<name>" in F64 and "<name>.f32" in F32:

    param.<p>      the initial weights (random, seeded; drawn in f32 precision so both copies hold
                   the same values). The mixers' conv weights keep a NON-ZERO upper triangle, so
                   the test proves our op ignores it.
    logits         [B, T, V] of the initial weights (torch, float64)
    loss           [] the shifted causal-LM loss CE(logits[:, :-1], labels[:, 1:]), labels = ids
                   with pad positions set to -100 (docs/paper.md A.8; nn/lm.h lm_loss with pad_id)
    grad.<p>       d loss / d p for every parameter, float64
    adamw.losses   [10] the loss before each of 10 torch.optim.AdamW steps (float64 model,
                   full batch, lr and weight_decay in the metadata, betas/eps default)

and ids (I64, [B, T]). __metadata__ holds the config (kind, vocab_size, d_model, n_layers, n_ctx,
n_heads, ffn_mult, mixer_form, mixer_expansion, mixer_heads, mixer_kernel (kernel form only),
tie_weights, norm_eps, rope_theta),
pad_id, lr, weight_decay, steps and torch_version.

Masked mixing: the flat and expanded mixers run the paper's code path, which overwrites the conv
weight with its lower triangle (in place, `.data`) before each forward and so gets PyTorch's DENSE
Conv1d gradient, upper triangle included. mixgrad's op gives the upper triangle an exactly zero
gradient instead, so the stored grad.*conv*.weight is the torch gradient MASKED WITH tril (the
outputs, and the AdamW trajectory of the lower triangle, are the same either way: AdamW is
elementwise). The multi-head twin uses a differentiable tril(W) in its forward, whose gradient is
already lower-triangular.

The safetensors files are written by hand (struct + json), like make_fixtures.py. The output is
deterministic: fixed seeds, the same bytes on every run with the same torch.
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_fixtures import save_safetensors

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
F64 = torch.float64

# The tiny shapes shared by every model (T = n_ctx: the paper's Conv1d needs the full window).
V, D, L, N, B = 37, 16, 2, 8, 3
FFN_MULT = 4
PAD_ID = 0
KERNEL = 4  # the kernel form's k (the paper's runs)
STEPS = 10
LR = 1e-2


# ---- the masked mixer: the paper's MixerBlock / LanguageMixer (mixer_lm/mixer_trainer.py) ----

class FeedForward(nn.Module):
    def __init__(self, dim, expansion_factor=4):
        super().__init__()
        inner = int(dim * expansion_factor)
        self.net = nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Linear(inner, dim))

    def forward(self, x):
        return self.net(x)


def mask_conv_(conv):
    """The paper's causal mask: conv.weight.data = tril(conv.weight) over (out, in), every tap."""
    w = conv.weight  # [out, in, k]
    mask = torch.tril(torch.ones(w.shape[0], w.shape[1], dtype=w.dtype))
    conv.weight.data = w * mask[:, :, None]


def check_same_padding(conv, x):
    """The kernel form's formula of docs/paper.md A.4, written out, equals torch's padding='same':
    y[b, i, f] = sum_{j, t} W[i, j, t] x[b, j, f + t - p] + c[i] with p = (k - 1) // 2."""
    w, k = conv.weight, conv.weight.shape[2]
    p = (k - 1) // 2
    xp = F.pad(x, (p, k - 1 - p))
    want = sum(torch.einsum("ij,bjf->bif", w[:, :, t], xp[:, :, t:t + x.shape[2]]) for t in range(k))
    want = want + conv.bias[None, :, None]
    assert (conv(x) - want).abs().max() < 1e-12


class MixerHeads(nn.Module):
    """A.5 clean semantics with mixgrad's names: the H Linear(d, d/H) projections stacked into
    one Linear(d, d) (head h = rows [h*d/H, (h+1)*d/H)), per-head [n, n] weights stacked into
    convs.weight [H, n, n] and convs.bias [H, n]."""

    def __init__(self, dim, length, heads):
        super().__init__()
        self.heads = heads
        self.proj_head = nn.Linear(dim, dim)
        self.convs = nn.Module()
        bound = 1 / math.sqrt(length)
        self.convs.weight = nn.Parameter(torch.empty(heads, length, length).uniform_(-bound, bound))
        self.convs.bias = nn.Parameter(torch.empty(heads, length).uniform_(-bound, bound))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, mask=True):
        b, t, d = x.shape
        p = self.proj_head(x).view(b, t, self.heads, d // self.heads).permute(0, 2, 1, 3)  # [B, H, T, Dh]
        w = torch.tril(self.convs.weight) if mask else self.convs.weight
        z = w @ p + self.convs.bias[:, :, None]
        return self.out_proj(z.permute(0, 2, 1, 3).reshape(b, t, d))


class MixerBlock(nn.Module):
    def __init__(self, dim, length, form, expansion, heads):
        super().__init__()
        self.patch_layernorm = nn.LayerNorm(dim)
        self.seq_layernorm = nn.LayerNorm(dim)
        self.patch_ff = FeedForward(dim).net  # registered as patch_ff.{0,2}, as mixgrad names it
        self.form = form
        self.mixer_mask = True  # the paper's flag; False only for the fixture's sanity check
        if form == "flat":
            self.conv = nn.Conv1d(length, length, 1)
        elif form == "kernel":
            self.conv = nn.Conv1d(length, length, KERNEL, padding="same")
        elif form == "expanded":  # ConvForward(length, e)
            self.conv = nn.Sequential(nn.Conv1d(length, expansion * length, 1), nn.GELU(),
                                      nn.Conv1d(expansion * length, length, 1))
        else:
            self.conv = MixerHeads(dim, length, heads)

    def forward(self, x):
        if self.mixer_mask and self.form in ("flat", "kernel"):
            mask_conv_(self.conv)
        elif self.mixer_mask and self.form == "expanded":
            mask_conv_(self.conv[0])
            mask_conv_(self.conv[2])
        residual = x
        x = self.seq_layernorm(x)
        if self.form == "kernel":
            check_same_padding(self.conv, x)
        x = (self.conv(x, self.mixer_mask) if self.form == "multihead" else self.conv(x)) + residual
        residual = x
        x = self.patch_layernorm(x)
        x = self.patch_ff(x) + residual
        return x


class LanguageMixer(nn.Module):
    def __init__(self, form, expansion=1, heads=2):
        super().__init__()
        self.wte = nn.Embedding(V, D)
        self.mixerblocks = nn.ModuleList([MixerBlock(D, N, form, expansion, heads) for _ in range(L)])
        self.lm_head = nn.Linear(D, V, bias=False)

    def forward(self, ids):
        x = self.wte(ids)
        for block in self.mixerblocks:
            x = block(x)
        return self.lm_head(x)


# ---- Llama: HF LlamaForCausalLM (modeling_llama.py), no GQA, no dropout, no attention mask ----

class LlamaRMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.variance_epsilon = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.variance_epsilon))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def causal_attention(q, k, v):
    """softmax(q k^T / sqrt(Dh) + causal mask) v on [B, H, T, Dh]."""
    t = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


class LlamaAttention(nn.Module):
    def __init__(self, dim, heads, theta):
        super().__init__()
        self.heads, self.theta = heads, theta
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        dh = d // self.heads
        split = lambda y: y.view(b, t, self.heads, dh).transpose(1, 2)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, dh, 2, dtype=torch.int64).to(x.dtype) / dh))
        freqs = torch.outer(torch.arange(t, dtype=x.dtype), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        o = causal_attention(q, k, v)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, d))


class LlamaMLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, dim, heads, theta, eps):
        super().__init__()
        self.self_attn = LlamaAttention(dim, heads, theta)
        self.mlp = LlamaMLP(dim, FFN_MULT * dim)
        self.input_layernorm = LlamaRMSNorm(dim, eps)
        self.post_attention_layernorm = LlamaRMSNorm(dim, eps)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, heads, theta, eps):
        super().__init__()
        self.embed_tokens = nn.Embedding(V, D)
        self.layers = nn.ModuleList([LlamaDecoderLayer(D, heads, theta, eps) for _ in range(L)])
        self.norm = LlamaRMSNorm(D, eps)


class LlamaForCausalLM(nn.Module):
    def __init__(self, heads=2, theta=10000.0, eps=1e-6):
        super().__init__()
        self.model = LlamaModel(heads, theta, eps)
        self.lm_head = nn.Linear(D, V, bias=False)

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(self.model.norm(x))


# ---- GPT-1: HF OpenAIGPTLMHeadModel (modeling_openai.py), post-LN, tied head, no dropout ----

class Conv1D(nn.Module):
    """HF's Conv1D: weight [in, out], y = x W + b."""

    def __init__(self, nx, nf):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GptAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = Conv1D(dim, 3 * dim)
        self.c_proj = Conv1D(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        o = causal_attention(split(q), split(k), split(v))
        return self.c_proj(o.transpose(1, 2).reshape(b, t, d))


class GptMLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.c_fc = Conv1D(dim, FFN_MULT * dim)
        self.c_proj = Conv1D(FFN_MULT * dim, dim)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GptBlock(nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.attn = GptAttention(dim, heads)
        self.ln_1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = GptMLP(dim)
        self.ln_2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x):
        n = self.ln_1(x + self.attn(x))
        return self.ln_2(n + self.mlp(n))


class GptModel(nn.Module):
    def __init__(self, heads, eps):
        super().__init__()
        self.tokens_embed = nn.Embedding(V, D)
        self.positions_embed = nn.Embedding(N, D)
        self.h = nn.ModuleList([GptBlock(D, heads, eps) for _ in range(L)])


class OpenAIGPTLMHeadModel(nn.Module):
    def __init__(self, heads=2, eps=1e-5):
        super().__init__()
        self.transformer = GptModel(heads, eps)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.transformer.tokens_embed(ids) + self.transformer.positions_embed(torch.arange(t))
        for block in self.transformer.h:
            x = block(x)
        return x @ self.transformer.tokens_embed.weight.t()  # tied lm_head


# ---- fixtures ----------------------------------------------------------------------------

def lm_loss(logits, ids, pad_id):
    """docs/paper.md A.8: labels = ids with pads -> -100, CE(logits[:, :-1], labels[:, 1:]), mean."""
    labels = ids.masked_fill(ids == pad_id, -100)
    v = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, v), labels[:, 1:].reshape(-1), ignore_index=-100)


def randomize_(model, gen):
    """Random weights of about unit activation scale, in f32 precision: matrices U(-a, a) with
    a = sqrt(3 / fan_in) (unit variance per output for unit inputs), embeddings N(0, 1), norm
    weights 1 + 0.2 N(0, 1), biases 0.2 N(0, 1). Deterministic in registration order."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed" in name or name.startswith("wte"):
                v = torch.randn(p.shape, generator=gen, dtype=F64)
            elif "norm" in name or ".ln_" in name:
                v = (1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=gen, dtype=F64)
            elif p.dim() == 1 or (name.endswith("convs.bias")):
                v = 0.2 * torch.randn(p.shape, generator=gen, dtype=F64)
            else:
                if isinstance(model, OpenAIGPTLMHeadModel) and p.dim() == 2:
                    fan_in = p.shape[0]  # Conv1D [in, out]
                elif name.endswith("convs.weight"):
                    fan_in = p.shape[2]
                else:
                    fan_in = p.shape[1] * (p.shape[2] if p.dim() == 3 else 1)  # Conv1d: in * k
                a = math.sqrt(3.0 / fan_in)
                v = (torch.rand(p.shape, generator=gen, dtype=F64) * 2 - 1) * a
            p.copy_(v.float().double())


def make_ids(gen):
    ids = torch.randint(1, V, (B, N), generator=gen, dtype=torch.int64)
    ids[1, -3:] = PAD_ID   # right padding (the paper's TinyStories layout)
    ids[2, :2] = PAD_ID    # left padding
    ids[0, 4] = PAD_ID     # a lone pad in the middle
    return ids


def build(name, model, meta, wd, seed):
    gen = torch.Generator().manual_seed(seed)
    model = model.double()
    randomize_(model, gen)
    ids = make_ids(gen)
    init = {k: v.detach().clone() for k, v in model.named_parameters()}

    if meta["kind"] == "masked_mixer":
        # Sanity check of the fixture itself: the stored upper triangles matter (an op that failed
        # to mask them would give different logits), and the masked model is causal.
        for block in model.mixerblocks:
            block.mixer_mask = False
        with torch.no_grad():
            unmasked = model(ids)
        for block in model.mixerblocks:
            block.mixer_mask = True
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(init[k])
            masked = model(ids)
            changed = ids.clone()
            changed[:, 5] = (changed[:, 5] + 1) % V
            later = model(changed)
            for k, p in model.named_parameters():
                p.copy_(init[k])
        assert (unmasked - masked).abs().max() > 0.1, name
        assert torch.equal(later[:, :5], masked[:, :5]) and (later[:, 5:] - masked[:, 5:]).abs().max() > 1e-3, name

    tensors = [("ids", ids)]

    def put(key, t):
        t = t.detach().to(F64).clone()
        tensors.append((key, t))
        tensors.append((key + ".f32", t.float()))

    for k, v in init.items():
        put("param." + k, v)

    # Forward, loss and gradients at the initial weights.
    logits = model(ids)
    loss = lm_loss(logits, ids, PAD_ID)
    loss.backward()
    put("logits", logits)
    put("loss", loss)
    for k, p in model.named_parameters():
        g = p.grad
        if meta["kind"] == "masked_mixer" and meta["mixer_form"] != "multihead" and ".conv" in k and k.endswith("weight"):
            # PyTorch's dense Conv1d gradient -> mixgrad's masked one (see the module docstring).
            g = g * torch.tril(torch.ones(g.shape[0], g.shape[1], dtype=g.dtype))[:, :, None]
        put("grad." + k, g)

    # 10 AdamW steps from the same initial weights.
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(init[k])
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=wd)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = lm_loss(model(ids), ids, PAD_ID)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    put("adamw.losses", torch.tensor(losses, dtype=F64))

    full = {"model": name, "torch_version": torch.__version__,
            "generator": "tests/golden/make_model_fixtures.py", "vocab_size": V, "d_model": D,
            "n_layers": L, "n_ctx": N, "ffn_mult": FFN_MULT, "pad_id": PAD_ID, "lr": LR,
            "weight_decay": wd, "steps": STEPS, "batch": B,
            "params": ",".join(init.keys())}
    full.update(meta)
    path = os.path.join(OUT_DIR, name + ".safetensors")
    save_safetensors(path, tensors, {k: str(v) for k, v in full.items()})
    print(f"{path}: loss {losses[0]:.6f} -> {losses[-1]:.6f}, {os.path.getsize(path)} bytes")


def main(only=None):
    """Writes every fixture, or with names on the command line only those (the others' files are
    left as they are)."""
    torch.manual_seed(0)  # module constructors draw weights we overwrite; keep them deterministic anyway
    mixer = {"kind": "masked_mixer", "n_heads": 2, "tie_weights": "false", "norm_eps": 1e-5}
    def make(name, *args):
        if not only or name in only:
            build(name, *args)

    make("model_mixer_flat", LanguageMixer("flat"),
         dict(mixer, mixer_form="flat", mixer_expansion=1, mixer_heads=2), 0.01, 101)
    make("model_mixer_expanded", LanguageMixer("expanded", expansion=2),
         dict(mixer, mixer_form="expanded", mixer_expansion=2, mixer_heads=2), 0.0, 102)
    make("model_mixer_multihead", LanguageMixer("multihead", heads=2),
         dict(mixer, mixer_form="multihead", mixer_expansion=1, mixer_heads=2), 0.01, 103)
    make("model_llama", LlamaForCausalLM(heads=2, theta=10000.0, eps=1e-6),
          {"kind": "llama", "n_heads": 2, "tie_weights": "false", "norm_eps": 1e-6, "rope_theta": 10000.0},
          0.0, 104)
    make("model_gpt", OpenAIGPTLMHeadModel(heads=2, eps=1e-5),
          {"kind": "gpt", "n_heads": 2, "tie_weights": "true", "norm_eps": 1e-5}, 0.01, 105)
    make("model_mixer_kernel", LanguageMixer("kernel"),
         dict(mixer, mixer_form="kernel", mixer_expansion=1, mixer_heads=2, mixer_kernel=KERNEL), 0.01, 106)


if __name__ == "__main__":
    import sys
    main(set(sys.argv[1:]))
