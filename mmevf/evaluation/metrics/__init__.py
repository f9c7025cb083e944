from .refer_seg_metric import ReferSegMetric
from .semantic_iou_metric import SemanticIoUMetric
from .text_following_metric import MetricGroup, TextFollowingMetric

__all__ = ['ReferSegMetric', 'SemanticIoUMetric', 'TextFollowingMetric', 'MetricGroup']
