from .refer_seg_metric import ReferSegMetric
from .text_following_metric import MetricGroup, TextFollowingMetric

__all__ = ['ReferSegMetric', 'TextFollowingMetric', 'MetricGroup']
