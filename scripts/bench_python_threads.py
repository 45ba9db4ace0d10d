"""Two Python threads summarizing at once vs one (each decode on one core, `threads=1`): the GIL
is released while decoding, so two threads on two cores take about half the time of one doing
the same documents.

    python scripts/bench_python_threads.py [N_DOCS]

Prints one JSON line: seconds for one thread, for two threads, and the speed-up. Needs the
`abridge` wheel installed (see the README's "From Python")."""

import json
import sys
import threading
import time
from pathlib import Path

import abridge

ROOT = Path(__file__).resolve().parents[1]
text = (ROOT / "examples" / "article.txt").read_text()
n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
model = abridge.Summarizer()
model.summarize(text)  # warm up


def work(k):
    for _ in range(k):
        model.summarize(text, threads=1)


t = time.perf_counter()
work(n)
one = time.perf_counter() - t

threads = [threading.Thread(target=work, args=(n // 2,)) for _ in range(2)]
t = time.perf_counter()
for th in threads:
    th.start()
for th in threads:
    th.join()
two = time.perf_counter() - t
print(json.dumps({"bench": "python_threads", "docs": n, "one_thread_s": round(one, 3),
                  "two_threads_s": round(two, 3), "speedup": round(one / two, 2)}))
