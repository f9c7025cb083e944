"""What the benchmarks (``benchmark.py``, ``benchmark_train.py``) share: the default model
scale, the expressions they prompt with, and a wall-clock timer."""
import os.path as osp
import time
from typing import Callable

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(ROOT, 'configs/evf_sam/evf-beit3b_sam-b_refcoco.py')
# RefCOCO-like expressions (val: ~7.2 per image, ~3.6 words each)
EXPRESSIONS = ['man in red shirt', 'left zebra', 'the woman on the right', 'small dog',
               'blue car behind the bus', 'guy in middle with glasses', 'top left pizza slice',
               'bowl closest to camera', 'right most person', 'white plate']


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
