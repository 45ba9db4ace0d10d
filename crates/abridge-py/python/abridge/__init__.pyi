from collections import namedtuple
from typing import Dict, List, NamedTuple, Optional, Sequence, Union

from ._abridge import HAS_BUNDLED_MODEL as HAS_BUNDLED_MODEL
from ._abridge import AbridgeError as AbridgeError
from ._abridge import Summarizer as Summarizer
from ._abridge import Summary as Summary
from ._abridge import __version__ as __version__

class Score(NamedTuple):
    precision: float
    recall: float
    fmeasure: float

def rouge(
    hyps: Sequence[str],
    refs: Union[Sequence[str], Sequence[Sequence[str]]],
    flavor: str = "rouge-score",
    stem: bool = True,
    types: Optional[Sequence[str]] = None,
) -> List[Dict[str, Score]]: ...
