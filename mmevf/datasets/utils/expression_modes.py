"""What every multi-expression dataset shares: its evaluation / training modes."""
import random
from typing import List, Optional, TypeVar

TEXT_MODES = ('original', 'random')
T = TypeVar('T')


class ExpressionModes:
    """Mixin of the datasets whose items carry several expressions of one image
    (``SemanticReferDataset``, ``HumanParsingDataset``, ``CocoPartDataset``,
    ``ObjectsInstanceDataset``):

    - ``text_mode='original'`` (evaluation): every expression, fixed at start-up;
    - ``text_mode='random'`` (training): up to ``max_expressions`` drawn afresh at every read
      with Python's ``random`` (as ``ReferSegDataset``), reproducible under mmengine's seeding.
    """

    def set_expression_modes(self, text_mode: str, max_expressions: Optional[int]) -> None:
        if text_mode not in TEXT_MODES:
            raise ValueError(f'text_mode must be one of {TEXT_MODES}, got {text_mode!r}')
        if max_expressions is not None and max_expressions < 1:
            raise ValueError(f'max_expressions must be None or >= 1, got {max_expressions}')
        self.text_mode = text_mode
        self.max_expressions = max_expressions

    def draw_expressions(self, candidates: List[T]) -> List[T]:
        """Up to ``max_expressions`` of ``candidates`` without replacement, in their order."""
        if self.max_expressions is None or len(candidates) <= self.max_expressions:
            return list(candidates)
        chosen = sorted(random.sample(range(len(candidates)), self.max_expressions))
        return [candidates[i] for i in chosen]

    @property
    def num_expressions(self) -> int:
        """Expressions scored by an evaluation (``'original'``: all of every image)."""
        if self.text_mode != 'original':
            raise ValueError("num_expressions is fixed only with text_mode='original'")
        return sum(len(self.get_data_info(i)['text']) for i in range(len(self)))
