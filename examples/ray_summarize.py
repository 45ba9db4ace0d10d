"""Summarize a JSON Lines corpus with Ray Data: the Python package in `map_batches`, one model per
worker actor.

    python examples/ray_summarize.py corpus.jsonl out_dir [--workers 2] [--batch-size 8]

Each input line needs `id` and `text`; the output folder gets JSON Lines files with `id`, `text`
and `summary`. With RAY_ADDRESS set it joins that Ray cluster and the actors spread over its
nodes; otherwise `--workers` actors share this machine's cores (each decodes with
`--threads-per-worker` threads).
"""

import argparse
import os
from typing import Optional

import ray

import abridge


class Summarize:
    """A Ray actor: loads the model once, then summarizes batches of documents."""

    def __init__(self, model: Optional[str], threads: int):
        self.model = abridge.Summarizer(model) if model else abridge.Summarizer()
        self.threads = threads

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        summaries = self.model.summarize_batch(texts, threads=self.threads)
        batch["summary"] = [s.text for s in summaries]
        return batch


def summarize(
    input_path: str,
    output_dir: str,
    workers: int = 2,
    batch_size: int = 8,
    model: Optional[str] = None,
    threads_per_worker: int = 1,
) -> None:
    ds = ray.data.read_json(input_path, lines=True)
    ds = ds.map_batches(
        Summarize,
        fn_constructor_args=(model, threads_per_worker),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=workers,
        num_cpus=threads_per_worker,
    )
    ds.write_json(output_dir)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input")
    p.add_argument("output_dir")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--model", help="a model folder (default: the bundled model)")
    p.add_argument("--threads-per-worker", type=int, default=1)
    a = p.parse_args()
    if os.environ.get("RAY_ADDRESS"):
        ray.init()  # an existing cluster
    else:
        # One CPU more than the actors hold, for reading and writing.
        ray.init(num_cpus=a.workers * a.threads_per_worker + 1)
    summarize(a.input, a.output_dir, a.workers, a.batch_size, a.model, a.threads_per_worker)


if __name__ == "__main__":
    main()
