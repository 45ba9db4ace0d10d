"""Whole-model parity with PyTorch: our summarizer's forward pass written in PyTorch (float64),
reading a model folder's `model.safetensors` and `config.json`, gives the per-token
log-likelihood of a small teacher-forced batch. The golden file it writes is what the Rust test
`crates/abridge/tests/parity.rs` matches (relative 1e-4): the evidence that the weights mean
the same in both worlds.

Two models:
- `models/default` (the bundled model: LSTM, coverage, pointer, input feeding), and
- `tiny-gru`, a two-layer GRU model without coverage whose weights this script draws in PyTorch
  and writes as a model folder (the direction a user converting a model takes).

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy safetensors
    .venv-torch/bin/python scripts/torch_parity.py   # writes crates/abridge/tests/parity/

The equations are the ones in `crates/abridge-model/src/seq2seq.rs`.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "crates" / "abridge" / "tests" / "parity"
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
UNK, BOS, EOS = 1, 2, 3


def load(folder: Path):
    cfg = json.loads((folder / "config.json").read_text())
    vocab = json.loads((folder / "vocab.json").read_text())["tokens"]
    w = {k: v.double() for k, v in load_file(str(folder / "model.safetensors")).items()}
    return cfg, vocab, w


def rnn(cfg, w, prefix, layers, bidirectional, input_size):
    kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg["cell"]]
    m = kind(input_size, cfg["hidden"], num_layers=layers, bidirectional=bidirectional).double()
    m.load_state_dict({k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)})
    return m


def forward(cfg, w, batch):
    """Per-token log P(y_t) of a teacher-forced batch (lists, time-major as in the golden file)."""
    assert cfg.get("attention", "bahdanau") == "bahdanau" and not cfg.get("tie_output")
    lstm = cfg["cell"] == "lstm"
    H, V = cfg["hidden"], cfg["vocab"]
    src = torch.tensor(batch["src"])  # [S, B]
    src_ext = torch.tensor(batch["src_ext"])
    lens = torch.tensor(batch["src_lengths"])
    dec_in = torch.tensor(batch["dec_in"])  # [T, B]
    tgt = torch.tensor(batch["targets"])
    S, B = src.shape
    T = dec_in.shape[0]
    emb = w["embedding.weight"]
    dec_emb = w.get("dec_embedding.weight", emb)
    enc = rnn(cfg, w, "encoder.", cfg["enc_layers"], True, cfg["emb"])
    packed = torch.nn.utils.rnn.pack_padded_sequence(emb[src], lens, enforce_sorted=False)
    out, state = enc(packed)
    h_enc, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=S)  # [S, B, 2H]
    hn, cn = state if lstm else (state, None)
    lin = lambda name, x: x @ w[name + ".weight"].T + w[name + ".bias"]
    s = torch.tanh(lin("bridge_h", torch.cat([hn[-2], hn[-1]], -1)))
    c = torch.tanh(lin("bridge_c", torch.cat([cn[-2], cn[-1]], -1))) if lstm else None
    cell_kind = torch.nn.LSTMCell if lstm else torch.nn.GRUCell
    cell = cell_kind(cfg["emb"], H).double()
    cell.load_state_dict({k[len("decoder."):]: v for k, v in w.items() if k.startswith("decoder.")})
    keys = lin("attention.enc", h_enc)  # [S, B, A]
    mask = torch.arange(S)[:, None] < lens[None, :]  # [S, B]
    ctx = torch.zeros(B, 2 * H, dtype=torch.float64)
    cov = torch.zeros(S, B, dtype=torch.float64)
    logp = []
    for t in range(T):
        xin = dec_emb[dec_in[t]]
        if cfg.get("input_feeding", True):
            xin = torch.cat([xin, ctx], -1)
        x = lin("dec_input", xin)
        if lstm:
            s, c = cell(x, (s, c))
        else:
            s = cell(x, s)
        score = keys + (s @ w["attention.dec.weight"].T)[None]
        if cfg["coverage"]:
            score = score + cov[..., None] * w["attention.coverage"]
        e = torch.tanh(score) @ w["attention.v"]  # [S, B]
        a = torch.softmax(e.masked_fill(~mask, float("-inf")), 0)
        ctx = (a[..., None] * h_enc).sum(0)
        o = torch.tanh(lin("out_hidden", torch.cat([s, ctx], -1)))
        pv = torch.softmax(lin("out_vocab", o), -1)  # [B, V]
        y = tgt[t]
        p_vocab = torch.where(y < V, pv.gather(1, y.clamp(max=V - 1)[:, None])[:, 0], 0.0)
        if cfg["pointer"]:
            g = torch.sigmoid(lin("pointer", torch.cat([ctx, s, x], -1)))[:, 0]
            copy = (a * (src_ext == y[None]).double()).sum(0)
            p = g * p_vocab + (1 - g) * copy
        else:
            p = p_vocab
        logp.append(torch.log(p.clamp(min=1e-12)))
        cov = cov + a
    return torch.stack(logp)  # [T, B]


def make_batch(vocab, pairs):
    """Time-major arrays for (source, summary) token lists, extended ids as abridge assigns them
    (the k-th distinct out-of-vocabulary source word of an example gets V + k)."""
    index = {t: i for i, t in enumerate(vocab)}
    V = len(vocab)
    rows = []
    for src, tgt in pairs:
        oov = []
        for tok in src:
            if tok not in index and tok not in oov:
                oov.append(tok)
        ids = [index.get(t, UNK) for t in src]
        ext = [index[t] if t in index else V + oov.index(t) for t in src]
        tgt_ext = [index[t] if t in index else (V + oov.index(t) if t in oov else UNK) for t in tgt]
        dec_in = [BOS] + [index.get(t, UNK) for t in tgt]
        rows.append((ids, ext, dec_in, tgt_ext + [EOS]))
    S = max(len(r[0]) for r in rows)
    T = max(len(r[2]) for r in rows)
    col = lambda k, n: [[r[k][i] if i < len(r[k]) else 0 for r in rows] for i in range(n)]
    return {
        "src": col(0, S),
        "src_ext": col(1, S),
        "src_lengths": [len(r[0]) for r in rows],
        "dec_in": col(2, T),
        "targets": col(3, T),
        "tgt_lengths": [len(r[2]) for r in rows],
    }


PAIRS = [
    (
        "the council met on tuesday and agreed the budget for next year , officials said .".split(),
        "the council agreed the budget .".split(),
    ),
    (
        "police in zorblatt arrested two men after a robbery at a bank on friday night .".split(),
        "two men arrested in zorblatt after bank robbery .".split(),
    ),
    ("rain fell .".split(), "rain .".split()),
]


def tiny_gru(folder: Path):
    """A two-layer GRU model without coverage, weights drawn here, written as a model folder."""
    torch.manual_seed(3)
    words = sorted({t for s, r in PAIRS for t in s + r} - {"zorblatt"})
    vocab = SPECIALS + words
    V, E, H, A = len(vocab), 6, 5, 4
    cfg = {
        "abridge_format": 2, "model_type": "abridge-pointer-generator", "cell": "gru",
        "vocab": V, "emb": E, "hidden": H, "attn": A, "enc_layers": 2, "pointer": True,
        "coverage": False, "cov_weight": 1.0, "tie_output": False, "dropout": 0.0,
        "attention": "bahdanau", "input_feeding": True, "separate_embeddings": False,
    }
    r = lambda *shape: (torch.rand(*shape, dtype=torch.float64) - 0.5)
    w = {"embedding.weight": r(V, E)}
    for k, v in torch.nn.GRU(E, H, num_layers=2, bidirectional=True).double().state_dict().items():
        w["encoder." + k] = r(*v.shape)
    for k, v in torch.nn.GRUCell(E, H).double().state_dict().items():
        w["decoder." + k] = r(*v.shape)
    for name, o, i in [("bridge_h", H, 2 * H), ("dec_input", E, E + 2 * H),
                       ("attention.enc", A, 2 * H), ("out_hidden", H, 3 * H),
                       ("out_vocab", V, H), ("pointer", 1, 3 * H + E)]:
        w[name + ".weight"], w[name + ".bias"] = r(o, i), r(o)
    # A GRU has no cell state to bridge: abridge stores the tensors empty.
    w["bridge_c.weight"], w["bridge_c.bias"] = r(0, 0), r(0)
    # Nor, without coverage, a coverage weight.
    w["attention.dec.weight"], w["attention.coverage"], w["attention.v"] = r(A, H), r(0), r(A)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in w.items()}, str(folder / "model.safetensors"),
              metadata={"format": "abridge-checkpoint", "version": "1"})
    (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (folder / "vocab.json").write_text(json.dumps({
        "format": "abridge-vocab", "version": 1, "specials": SPECIALS,
        "tokens": vocab, "counts": [0] * 4 + [1] * len(words)}) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"abridge_format": 2, "lowercase": True, "ptb": False, "max_source_tokens": 50}) + "\n")
    (folder / "generation_config.json").write_text(json.dumps({
        "abridge_format": 2, "beam": 2, "min_len": 1, "max_len": 8, "length_penalty": "none",
        "alpha": 0.0, "coverage_penalty": "none", "beta": 0.0, "block_ngram": 0}) + "\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    tiny_gru(OUT / "tiny-gru")
    cases = []
    for name, folder in [("bundled", ROOT / "models" / "default"), ("tiny-gru", OUT / "tiny-gru")]:
        cfg, vocab, w = load(folder)
        batch = make_batch(vocab, PAIRS)
        with torch.no_grad():
            logp = forward(cfg, w, batch)
        cases.append({
            "name": name,
            "folder": str(folder.relative_to(ROOT)),
            "batch": batch,
            # [T][B]; null past each target's length.
            "log_prob": [[float(logp[t, b]) if t < batch["tgt_lengths"][b] else None
                          for b in range(len(PAIRS))] for t in range(len(batch["dec_in"]))],
        })
        print(name, "mean log P(y_t) =", float(logp[torch.tensor(batch["dec_in"]) != 0].mean()))
    meta = {"torch": torch.__version__, "dtype": "float64", "script": "scripts/torch_parity.py"}
    lines = [json.dumps(c, separators=(",", ":")) for c in cases]
    (OUT / "golden.json").write_text(
        '{"meta": ' + json.dumps(meta) + ',\n "cases": [\n' + ",\n".join(lines) + "\n]}\n")


if __name__ == "__main__":
    main()
