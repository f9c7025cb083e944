"""Several evaluation splits in one run."""
from mmengine.dataset import ConcatDataset

from mmevf.registry import DATASETS


@DATASETS.register_module()
class MultiSplitDataset(ConcatDataset):
    """mmengine's ``ConcatDataset`` whose ``metainfo`` carries ``cumulative_sizes``, which
    mmdet's ``MultiDatasetsEvaluator`` reads to score each split with its own metric
    (keys such as ``refcoco_val/cIoU``)."""

    @property
    def metainfo(self) -> dict:
        self.full_init()
        return dict(super().metainfo, cumulative_sizes=list(self.cumulative_sizes))
