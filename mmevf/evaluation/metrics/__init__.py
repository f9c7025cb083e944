from .grefer_seg_metric import GReferSegMetric
from .metric_group import MetricGroup
from .refer_seg_metric import ReferSegMetric
from .semantic_iou_metric import SemanticIoUMetric
from .text_following_metric import TextFollowingMetric

__all__ = [
    'GReferSegMetric', 'MetricGroup', 'ReferSegMetric', 'SemanticIoUMetric', 'TextFollowingMetric'
]
