"""tools/analysis/benchmark_train.py's FLOP count, whose recompute / cached ratio it prints as the
bound of the cached speed-up: counted on the reference path, it is the same whichever attention
implementation SAM's encoder runs, and the recompute step's count holds the frozen encoder's
forward (which torch's counter does not see through the fast path's oneDNN / fused ops)."""
from functools import partial

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from segment_anything.modeling import ImageEncoderViT
from torch.utils.flop_counter import FlopCounterMode

from mmevf.apis import resolve_config
from mmevf.engine.runner_setup import register_all_modules
from mmevf.models.layers import fused_linear
from mmevf.registry import MODELS
from tests.conftest import load_tool

CONFIG = 'evf-tiny-frozen-sam_synthref'


@pytest.fixture(scope='module')
def bench(xlmr_tokenizer_dir):
    """The tool, the tiny frozen-SAM EVF-SAM, its batches and one training step per mode, as
    the tool's main() builds them (2 images x 2 expressions)."""
    tool = load_tool('analysis/benchmark_train')
    args = tool.parse_args([CONFIG, '--images', '2', '--expressions', '2', '--image-size', '60',
                            '80'])
    register_all_modules()
    cfg = Config.fromfile(resolve_config(CONFIG))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    batches = tool.make_batches(model, cfg, args, str(xlmr_tokenizer_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tool, model, batches, tool.step_functions(model, batches)
    torch.set_num_threads(threads)


def counts(tool, model, steps) -> dict:
    return {mode: tool.count_flops(model, step) for mode, step in steps.items()}


def reference_encoder_flops(encoder, batch_size: int) -> int:
    """The frozen encoder's forward FLOPs, counted independently: segment_anything's own
    ``ImageEncoderViT`` of the same architecture (its weights do not matter) on the batch's
    input size."""
    blocks = encoder.blocks
    window = max(blk.window_size for blk in blocks)
    reference = ImageEncoderViT(
        img_size=encoder.img_size, patch_size=encoder.patch_size,
        embed_dim=encoder.arch['embed_dim'], depth=len(blocks),
        num_heads=encoder.arch['num_heads'],
        mlp_ratio=blocks[0].mlp.lin1.out_features / encoder.arch['embed_dim'],
        out_chans=encoder.out_chans, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_rel_pos=True, window_size=window,
        global_attn_indexes=tuple(encoder.arch['global_attn_indexes']))
    images = torch.zeros(batch_size, 3, encoder.img_size, encoder.img_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        reference(images)
    return counter.get_total_flops()


def test_bound_is_the_same_with_fast_attention_on_and_off(bench):
    tool, model, _, steps = bench
    encoder = model.image_encoder
    assert encoder.fast_attention and encoder.frozen  # the config: the fast path, frozen
    fast = counts(tool, model, steps)
    assert encoder.fast_attention  # switched back after counting
    encoder.fast_attention = False
    try:
        reference = counts(tool, model, steps)
    finally:
        encoder.fast_attention = True
    assert fast == reference
    assert fast['recompute'] > fast['cached'] > 0


def test_recompute_count_holds_the_image_encoder(bench):
    tool, model, batches, steps = bench
    flops = counts(tool, model, steps)
    encoder = model.image_encoder
    batch_size = len(batches['recompute']['inputs'])
    encoder_flops = reference_encoder_flops(encoder, batch_size)
    # the steps differ by the frozen encoder's forward only (no backward through it)
    assert flops['recompute'] - flops['cached'] == encoder_flops
    # and that is at least its linear layers (qkv, proj, MLP: 12 C² per token and block, 2
    # FLOPs each) and patch embedding on the unpadded tokens
    width, depth = encoder.arch['embed_dim'], len(encoder.blocks)
    tokens = batch_size * (encoder.img_size // encoder.patch_size) ** 2
    linear = 2 * tokens * depth * 12 * width**2
    patch_embed = 2 * tokens * width * 3 * encoder.patch_size**2
    assert encoder_flops >= linear + patch_embed
    # what torch's counter sees of the fast path as it runs: the encoder all but vanishes
    naive = {}
    for mode, step in steps.items():
        with FlopCounterMode(display=False) as counter:
            step()
        naive[mode] = counter.get_total_flops()
    # (the cached step loses BEiT-3's fused attention as well; on this machine the naive
    # bound at this tiny scale read 1.17x against 2.19x)
    assert naive['cached'] <= flops['cached']
    assert naive['recompute'] - naive['cached'] < encoder_flops / 2


def test_onednn_linear_counted_as_a_linear():
    """A fused linear in a no-grad region (oneDNN where this torch has it) counts as
    ``F.linear``: 2 x rows x K x M, with or without its fused GELU / residual."""
    tool = load_tool('analysis/benchmark_train')
    x, weight, bias = torch.randn(2, 5, 8), torch.randn(16, 8), torch.randn(16)
    residual = torch.randn(2, 5, 16)
    for kwargs in (dict(), dict(gelu='none'), dict(residual=residual)):
        with torch.no_grad(), FlopCounterMode(
                display=False, custom_mapping=tool.EXTRA_FLOP_FORMULAS) as counter:
            fused_linear(x, weight, bias, **kwargs)
        assert counter.get_total_flops() == 2 * 10 * 8 * 16, kwargs
