"""Base of the text-prompted SAM segmentors: expressions grouped by their image."""
from typing import Dict, List, Optional

from torch import Tensor

from .base import BaseSAMSegmentor, LowResOutput


class TextPromptSegmentor(BaseSAMSegmentor):
    """Base of the text-prompted SAM segmentors (``EVFSAM``, ``DITSam``).

    The data preprocessor batches the N expressions of B images together and maps each to its
    image (``expr_image_index``, (N,)); a subclass implements :meth:`decode` and regroups its
    per-expression results by image with :meth:`group_by_image`.
    """

    def decode(self, inputs: Dict[str, Tensor]) -> List[LowResOutput]:
        """Low-resolution mask logits and IoU predictions, one entry per image."""
        raise NotImplementedError

    def decode_batch(self, inputs: Dict[str, Tensor],
                     data_samples: Optional[list] = None) -> List[LowResOutput]:
        return self.decode(inputs)

    @staticmethod
    def group_by_image(values: Tensor, inputs: Dict[str, Tensor]) -> List[Tensor]:
        """(N, ...) per-expression values -> one (N_i, ...) tensor per image, in batch order."""
        image_index = inputs['expr_image_index']
        return [values[image_index == i] for i in range(int(inputs['img'].shape[0]))]
