"""The Python package end to end: the bundled model gives the CLI's summary, options and errors
behave as in the CLI and the HTTP server, batches equal single calls, ROUGE matches known
values, and decoding releases the GIL."""

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import abridge

ROOT = Path(__file__).resolve().parents[3]
ARTICLE = ROOT / "examples" / "article.txt"
MODEL = ROOT / "models" / "default"


def cli() -> Path:
    """The release binary `cargo test --workspace --release` (run first by .ci/run) built."""
    exe = Path(os.environ.get("ABRIDGE_BIN", ROOT / "target" / "release" / "abridge"))
    assert exe.is_file(), f"{exe} missing: build it with `cargo build --release` first"
    return exe


@pytest.fixture(scope="module")
def model():
    assert abridge.HAS_BUNDLED_MODEL
    return abridge.Summarizer()


def test_the_bundled_model_gives_the_cli_summary(model):
    text = ARTICLE.read_text()
    out = subprocess.run(
        [str(cli()), "summarize", str(ARTICLE), "--threads", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    s = model.summarize(text)
    assert s.text == out.stdout.rstrip("\n")
    assert len(s.tokens) >= 20 and isinstance(s.score, float)
    assert s.truncated  # the article is longer than the model's 200 source tokens
    assert str(s) == s.text and "Summary(" in repr(s)
    assert s.sentences == s.text.split("\n") and len(s.sentences) >= 2


def test_a_model_folder_opens_like_the_bundled_one(model):
    folder = abridge.Summarizer(str(MODEL))
    assert folder.generation_config == model.generation_config
    assert folder.generation_config["min_len"] == 50
    text = ARTICLE.read_text()
    assert folder.summarize(text, beam=2, max_len=20).text == model.summarize(
        text, beam=2, max_len=20
    ).text


def test_options_override_the_defaults(model):
    text = ARTICLE.read_text()
    short = model.summarize(text, beam=2, max_len=12)
    assert len(short.tokens) <= 12
    greedy = model.summarize(text, beam=1, min_len=5, max_len=30, selector="off")
    assert 5 <= len(greedy.tokens) <= 30


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beam": 0}, "`beam`: must be between 1 and 16, got 0"),
        ({"min_len": 9, "max_len": 5}, "`min_len`: 9 is above max_len 5"),
        ({"alpha": 11.0}, "`alpha`: must be a number in [0, 10], got 11"),
        ({"select_threshold": 1.5}, "`select_threshold`: must be a number in [0, 1), got 1.5"),
        (
            {"length_penalty": "long"},
            '`length_penalty`: unknown value "long"; expected one of none, gnmt, avg, power',
        ),
    ],
)
def test_bad_options_raise_the_cli_message(model, kwargs, message):
    with pytest.raises(abridge.AbridgeError) as e:
        model.summarize("the cat sat on the mat .", **kwargs)
    assert str(e.value) == message
    # The CLI says the same.
    flags = []
    for k, v in kwargs.items():
        flags += ["--" + k.replace("_", "-"), str(v)]
    out = subprocess.run(
        [str(cli()), "summarize", *flags, "-"], input="a b", capture_output=True, text=True
    )
    assert out.returncode != 0
    assert message.split(": ", 1)[1] in out.stderr


def test_a_batch_equals_single_calls_and_names_a_bad_document(model):
    text = ARTICLE.read_text()
    docs = [text, text[: len(text) // 2], "The council met on Tuesday. It agreed the budget."]
    batch = model.summarize_batch(docs, threads=2, beam=2, max_len=30)
    assert [s.text for s in batch] == [model.summarize(d, beam=2, max_len=30).text for d in docs]
    with pytest.raises(abridge.AbridgeError, match=r"texts\[1\]: the document has no words"):
        model.summarize_batch([text, "   "], max_len=10)


def test_lead_takes_the_first_sentences(model):
    lead = model.lead("One sentence here. Two sentences here. Three. Four.", k=2)
    assert lead.splitlines() == ["one sentence here.", "two sentences here."]


def test_missing_and_corrupt_model_folders_are_named(tmp_path):
    with pytest.raises(abridge.AbridgeError, match="nowhere"):
        abridge.Summarizer(str(tmp_path / "nowhere"))
    copy = tmp_path / "m"
    shutil.copytree(MODEL, copy)
    (copy / "generation_config.json").write_text("{ broken")
    with pytest.raises(abridge.AbridgeError, match="generation_config.json"):
        abridge.Summarizer(copy)
    (copy / "generation_config.json").unlink()
    with pytest.raises(abridge.AbridgeError, match="generation_config.json: missing"):
        abridge.Summarizer(copy)


def test_rouge_matches_rouge_score_and_rouge155():
    [r] = abridge.rouge(["the cat sat"], ["the cat sat on the mat"])
    assert set(r) == {"rouge1", "rouge2", "rougeLsum"}
    assert r["rouge1"] == abridge.Score(1.0, 0.5, pytest.approx(2 / 3))
    assert r["rouge1"].fmeasure == pytest.approx(2 / 3)
    # Several references: rouge-score's score_multi keeps the best F per type.
    [m] = abridge.rouge(["the cat sat"], [["a dog ran", "the cat sat"]], types=["rouge1"])
    assert m["rouge1"].fmeasure == 1.0
    # Stemming: "cats" and "cat" match only with it.
    [s] = abridge.rouge(["cats"], ["cat"], types=["rouge1"], stem=True)
    [n] = abridge.rouge(["cats"], ["cat"], types=["rouge1"], stem=False)
    assert (s["rouge1"].fmeasure, n["rouge1"].fmeasure) == (1.0, 0.0)
    [p] = abridge.rouge(["the cat sat"], ["the cat sat on the mat"], flavor="rouge155")
    assert set(p) == {"ROUGE-1", "ROUGE-2", "ROUGE-L"}
    assert p["ROUGE-1"].recall == 0.5
    with pytest.raises(abridge.AbridgeError, match="flavor"):
        abridge.rouge(["a"], ["a"], flavor="bleu")
    with pytest.raises(abridge.AbridgeError, match="1 hypotheses but 2 references"):
        abridge.rouge(["a"], ["a", "b"])
    with pytest.raises(abridge.AbridgeError, match="rouge7x"):
        abridge.rouge(["a"], ["a"], types=["rouge7x"])


def test_decoding_releases_the_gil(model):
    """While one thread decodes, another Python thread keeps running: with the GIL held it
    would get at most a switch interval (5 ms) of the decode's time."""
    text = ARTICLE.read_text()

    def spin(seconds):
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            n += 1
        return n

    rate = spin(0.2) / 0.2  # iterations per second with the GIL to itself
    busy = threading.Event()
    took = {}

    def decode():
        busy.set()
        t = time.perf_counter()
        model.summarize(text, beam=4, min_len=60, max_len=100)
        took["s"] = time.perf_counter() - t
        busy.clear()

    th = threading.Thread(target=decode)
    th.start()
    busy.wait()
    n = 0
    while busy.is_set():
        n += 1
    th.join()
    expected = rate * took["s"]
    assert took["s"] > 0.05, took
    assert n > 0.2 * expected, f"{n} iterations while decoding, {expected:.0f} expected unblocked"
