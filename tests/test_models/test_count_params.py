"""tools/analysis/count_params.py reproduces the paper's parameter counts."""
import re
import sys
from functools import lru_cache

from tests.conftest import run_command
from tools.analysis.count_params import count

# one count per config for the module: the base config's serves both in-process tests (a
# paper-scale model built on the meta device, ~1 s each)
count_once = lru_cache(maxsize=None)(count)


def test_paper_parameter_counts(repo_root):
    result = count_once(str(repo_root / 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'))
    assert result['total'] == 1_315_105_072  # paper: 1.32B
    # SAM's image encoder (ViT-H: 637,026,048) is the only frozen part.
    assert result['total'] - result['trainable'] == result['modules']['image_encoder'][0]
    assert result['modules']['image_encoder'][0] == 637_026_048


def test_command_line_counts_the_base_model():
    """The suite's one real subprocess run of the script (others call count() in-process)."""
    out = run_command([sys.executable, 'tools/analysis/count_params.py',
                       'configs/evf_sam/evf-beit3b_sam-h_refcoco.py'])
    rows = {line.split()[0]: [int(v.replace(',', '')) for v in line.split()[1:]]
            for line in out.splitlines() if re.match(r'\w+ +[\d,]+ +[\d,]+$', line)}
    assert rows['total'] == [862_865_456, 862_865_456 - 637_026_048]  # paper: 863M
    assert rows['image_encoder'] == [637_026_048, 0]  # the only frozen part


def test_ablation_switches_change_trainable_counts(repo_root):
    base = count_once(str(repo_root / 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'))
    frozen_mm = count_once(str(repo_root / 'configs/evf_sam/ablations/'
                               'evf-beit3l_sam-h_refcoco_frozen-mm-encoder.py'))
    assert frozen_mm['total'] == base['total']
    # Tab. 4 row 1 freezes BEiT-3-L (672,702,464) and SAM's prompt encoder (6,220)
    assert base['trainable'] - frozen_mm['trainable'] == 672_702_464 + 6_220
