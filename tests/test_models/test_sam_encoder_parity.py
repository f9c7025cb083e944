"""SAMImageEncoder's fast path against segment_anything's forward at SAM's real scale: the
ViT-B and ViT-H widths and heads (ViT-L's lie between them), window 14 and the 1024² grid (64 x 64 tokens, windows padded to
70), rel-pos tables non-zero, fp32, max |diff| <= 1e-4.

To keep the unit run short the depth is cut to two blocks, one windowed and one global (the two
kinds of attention; every further block repeats one of them); still ~10 s per arch on two
cores, hence ``slow``. Full-depth figures are measured by
``tools/analysis/benchmark_sam_encoder.py --arch vit_{b,l,h}`` (max |diff| printed)."""
import pytest
import torch

from mmevf.models.sam import SAMImageEncoder
from mmevf.models.sam.image_encoder import ARCH_SETTINGS


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['vit_b', 'vit_h'])
def test_fast_path_equals_segment_anything_at_1024(arch):
    settings = dict(ARCH_SETTINGS[arch], depth=2, global_attn_indexes=(1, ))
    torch.manual_seed(0)
    encoder = SAMImageEncoder(arch=settings, img_size=1024)
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            if name.endswith(('rel_pos_h', 'rel_pos_w', 'pos_embed')):  # zero at init
                param.normal_(0, 0.1)
    assert [blk.window_size for blk in encoder.blocks] == [14, 0]
    images = torch.randn(1, 3, 1024, 1024)
    fast = encoder(images)
    encoder.fast_attention = False
    reference = encoder(images)
    assert fast.shape == (1, 256, 64, 64)
    assert (fast - reference).abs().max() <= 1e-4
