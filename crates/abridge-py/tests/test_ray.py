"""The Ray Data example (`examples/ray_summarize.py`): the package inside `map_batches` on two
local worker actors gives, for every record, the summary a direct call gives.

Skipped when `ray` is not installed, except under `.ci/run` (ABRIDGE_REQUIRE_RAY=1), which
installs it."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

import abridge

if os.environ.get("ABRIDGE_REQUIRE_RAY") == "1":
    import ray
else:
    ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[3]


def load_example():
    spec = importlib.util.spec_from_file_location(
        "ray_summarize", ROOT / "examples" / "ray_summarize.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ray_data_map_batches_matches_direct_calls(tmp_path):
    sentences = [
        s.strip() + "."
        for s in (ROOT / "examples" / "article.txt").read_text().split(".")
        if len(s.split()) > 4
    ]
    docs = {f"doc-{i}": " ".join(sentences[i : i + 6]) for i in range(12)}
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in docs.items())
    )
    out = tmp_path / "out"
    # Two actors of one CPU each, and one CPU for reading and writing.
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    try:
        load_example().summarize(str(corpus), str(out), workers=2, batch_size=4)
    finally:
        ray.shutdown()
    got = {}
    for f in sorted(out.glob("*.json*")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            got[r["id"]] = r["summary"]
    assert set(got) == set(docs)
    model = abridge.Summarizer()
    ids = list(docs)
    want = model.summarize_batch([docs[i] for i in ids], threads=1)
    assert got == {i: s.text for i, s in zip(ids, want)}
