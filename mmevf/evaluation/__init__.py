from .functional import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .summary import format_metric_table

__all__ = ['format_metric_table']
