"""Several metrics acting as one: e.g. cIoU and the cross-object IoU side by side per split."""
from typing import Dict, List, Sequence, Union

from mmengine.evaluator import BaseMetric

from mmevf.registry import METRICS


@METRICS.register_module()
class MetricGroup(BaseMetric):
    """Several metrics acting as one, so that mmdet's ``MultiDatasetsEvaluator`` (which pairs
    exactly one metric with each split) can report e.g. cIoU and the cross-object IoU per split.

    Each member must append exactly one result per data sample (``ReferSegMetric`` and
    ``TextFollowingMetric`` do); the group stores them side by side, one entry per sample,
    so the evaluator's slicing per split and its truncation of distributed padding apply to all
    members alike. The members' own prefixes are ignored: keys are ``<group prefix>/<name>``.

    Args:
        metrics: member configs (or built metrics).
        prefix: prefix of the keys.
    """
    default_prefix = None

    def __init__(self, metrics: Sequence[Union[dict, BaseMetric]], **kwargs) -> None:
        super().__init__(**kwargs)
        if not metrics:
            raise ValueError('MetricGroup needs at least one metric')
        self.members: List[BaseMetric] = [
            m if isinstance(m, BaseMetric) else METRICS.build(m) for m in metrics
        ]

    @property
    def dataset_meta(self):
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = dataset_meta
        for member in self.members:
            member.dataset_meta = dataset_meta

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        entries = []
        for member in self.members:
            before = len(member.results)
            member.process(data_batch, data_samples)
            added = member.results[before:]
            del member.results[before:]  # the group holds them
            if len(added) != len(data_samples):
                raise ValueError(f'MetricGroup: {type(member).__name__} stored {len(added)} '
                                 f'results for {len(data_samples)} samples; members must '
                                 f'store one per sample')
            entries.append(added)
        self.results.extend(zip(*entries))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        values: Dict[str, float] = {}
        for index, member in enumerate(self.members):
            for name, value in member.compute_metrics([r[index] for r in results]).items():
                if name in values:
                    raise ValueError(f'MetricGroup: two members report {name!r}')
                values[name] = value
        return values
