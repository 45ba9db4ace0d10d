from typing import Dict, List, Optional, Union
from os import PathLike

__version__: str
HAS_BUNDLED_MODEL: bool

class AbridgeError(Exception):
    """An error from Abridge; the message names the problem and where."""

class Summary:
    """One summary."""

    text: str
    """The summary, one sentence per line."""
    sentences: List[str]
    """Its sentences."""
    tokens: List[str]
    score: float
    """The beam search's score (length-normalised log-probability with penalties)."""
    copied_oov: List[str]
    """Source words outside the vocabulary that the pointer copied."""
    truncated: bool
    """Whether the document was cut to the model's source length."""

class Summarizer:
    """A model ready to summarize: ``Summarizer()`` is the bundled CNN/DailyMail model,
    ``Summarizer(path)`` a model folder (or a training run folder)."""

    def __init__(self, path: Optional[Union[str, PathLike]] = None) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def generation_config(self) -> Dict[str, Union[int, float, str]]:
        """The model's decoding defaults (its generation_config.json)."""
    def summarize(
        self,
        text: str,
        *,
        threads: int = 0,
        beam: Optional[int] = None,
        min_len: Optional[int] = None,
        max_len: Optional[int] = None,
        length_penalty: Optional[str] = None,
        alpha: Optional[float] = None,
        coverage_penalty: Optional[str] = None,
        beta: Optional[float] = None,
        block_ngram: Optional[int] = None,
        max_src_len: Optional[int] = None,
        selector: Optional[str] = None,
        select_threshold: Optional[float] = None,
    ) -> Summary:
        """Summarizes one document (the GIL is released while decoding); keyword options
        override the model's defaults. ``threads``: cores for this decode (0 = all); Python
        threads decoding at once each pass ``threads=1``. Raises AbridgeError naming a bad
        option."""
    def summarize_batch(
        self,
        texts: List[str],
        *,
        threads: int = 0,
        batch_docs: int = 4,
        beam: Optional[int] = None,
        min_len: Optional[int] = None,
        max_len: Optional[int] = None,
        length_penalty: Optional[str] = None,
        alpha: Optional[float] = None,
        coverage_penalty: Optional[str] = None,
        beta: Optional[float] = None,
        block_ngram: Optional[int] = None,
        max_src_len: Optional[int] = None,
        selector: Optional[str] = None,
        select_threshold: Optional[float] = None,
    ) -> List[Summary]:
        """Summarizes documents on ``threads`` threads (0 = one per core), in input order."""
    def lead(self, text: str, k: int = 3) -> str:
        """The first ``k`` sentences, one per line."""

def rouge(
    hyps: List[str],
    refs: Union[List[str], List[List[str]]],
    flavor: str = "rouge-score",
    stem: bool = True,
    types: Optional[List[str]] = None,
) -> List[List[tuple]]: ...
