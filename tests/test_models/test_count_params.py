"""tools/analysis/count_params.py reproduces the paper's parameter counts."""
from functools import lru_cache

import pytest
import torch

from tools.analysis.count_params import count

# one count per config for the module: the base config's serves both tests (a paper-scale
# model built on the meta device, ~1 s each)
count_once = lru_cache(maxsize=None)(count)


@pytest.fixture(scope='module', autouse=True)
def nondeterministic():
    """Counted as the command line counts, in a process without deterministic algorithms: an
    earlier in-process training (``randomness.deterministic=True``) leaves them on for the
    whole test process, and then every parameter, made real before it moves to ``meta``, is
    first filled with NaN (~6 s a paper-scale model instead of ~0.7 s). Restored afterwards."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.mark.parametrize('config, total', [
    ('configs/evf_sam/evf-beit3l_sam-h_refcoco.py', 1_315_105_072),  # paper: 1.32B
    ('configs/evf_sam/evf-beit3b_sam-h_refcoco.py', 862_865_456),  # paper: 863M
])
def test_paper_parameter_counts(repo_root, config, total):
    result = count_once(str(repo_root / config))
    assert result['total'] == total
    # SAM's image encoder (ViT-H: 637,026,048) is the only frozen part.
    assert result['total'] - result['trainable'] == result['modules']['image_encoder'][0]
    assert result['modules']['image_encoder'][0] == 637_026_048


def test_ablation_switches_change_trainable_counts(repo_root):
    base = count_once(str(repo_root / 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'))
    frozen_mm = count_once(str(repo_root / 'configs/evf_sam/ablations/'
                               'evf-beit3l_sam-h_refcoco_frozen-mm-encoder.py'))
    assert frozen_mm['total'] == base['total']
    # Tab. 4 row 1 freezes BEiT-3-L (672,702,464) and SAM's prompt encoder (6,220)
    assert base['trainable'] - frozen_mm['trainable'] == 672_702_464 + 6_220
