"""Abridge: summarize text with a pointer-generator RNN written in Rust, and ROUGE as the
reference scorers compute it.

>>> import abridge
>>> model = abridge.Summarizer()              # the bundled CNN/DailyMail model
>>> print(model.summarize(open("article.txt").read(), beam=4).text)
"""

from collections import namedtuple
from typing import Dict, List, Optional, Sequence, Union

from ._abridge import (
    HAS_BUNDLED_MODEL,
    AbridgeError,
    Summarizer,
    Summary,
    __version__,
)
from ._abridge import rouge as _rouge

#: Precision, recall and F-measure of one ROUGE type: the same tuple as rouge-score's
#: ``rouge_score.scoring.Score``.
Score = namedtuple("Score", ["precision", "recall", "fmeasure"])


def rouge(
    hyps: Sequence[str],
    refs: Union[Sequence[str], Sequence[Sequence[str]]],
    flavor: str = "rouge-score",
    stem: bool = True,
    types: Optional[Sequence[str]] = None,
) -> List[Dict[str, Score]]:
    """ROUGE of each hypothesis against its reference (or list of references).

    ``flavor="rouge-score"`` gives exactly what Google's rouge-score 0.1.2 gives
    (``RougeScorer(types, use_stemmer=stem).score(ref, hyp)``; with several references, the
    best F-measure per type, as its ``score_multi``); ``types`` defaults to rouge1, rouge2,
    rougeLsum. ``flavor="rouge155"`` gives ROUGE-1.5.5.pl's per-pair scores with See et al.'s
    flags (``-n 2 -a``, ``-m`` when ``stem``; several references averaged), keyed ROUGE-1,
    ROUGE-2, ROUGE-L.

    Returns one dict per pair, ``{type: Score(precision, recall, fmeasure)}``.
    """
    rows = _rouge(
        list(hyps),
        [r if isinstance(r, str) else list(r) for r in refs],
        flavor,
        stem,
        None if types is None else list(types),
    )
    return [{t: Score(p, r, f) for (t, p, r, f) in row} for row in rows]


__all__ = [
    "AbridgeError",
    "HAS_BUNDLED_MODEL",
    "Score",
    "Summarizer",
    "Summary",
    "rouge",
    "__version__",
]
