"""SAMPretrainer (the tiny SAM's point / box training), its prompts, and the chain it starts:
Runner training -> tools/model_converters/mmevf2sam.py -> SAM's own layout -> tiny EVF-SAM."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks

from mmevf.models.segmentors.sam_pretrainer import innermost_pixels, mask_boxes
from mmevf.registry import MODELS
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/sam/sam-tiny_synthref.py'


def two_masks() -> torch.Tensor:
    masks = torch.zeros(2, 20, 30, dtype=torch.bool)
    masks[0, 2:9, 3:20] = True  # rows 2-8, columns 3-19
    masks[1, 10:19, 20:29] = True  # rows 10-18, columns 20-28
    return masks


def test_innermost_pixel_and_boxes_by_hand():
    flat = innermost_pixels(two_masks())
    assert (flat // 30).tolist() == [5, 14] and (flat % 30).tolist() == [11, 24]
    assert mask_boxes(two_masks(), noise=0.0).tolist() == [[3, 2, 20, 9], [20, 10, 29, 19]]
    torch.manual_seed(0)
    noisy = mask_boxes(two_masks(), noise=0.1)
    exact = mask_boxes(two_masks(), noise=0.0)
    side = (exact[:, 2:] - exact[:, :2]).repeat(1, 2)
    assert ((noisy - exact).abs() <= 0.1 * side).all() and not torch.equal(noisy, exact)


def tiny_pretrainer(**kwargs):
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(CONFIG)).model
    cfg.update(kwargs)
    return MODELS.build(cfg)


def sample_with(masks: torch.Tensor, img_shape=(160, 240)) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_shape=img_shape, ori_shape=tuple(masks.shape[1:]),
                                         img_path='two_masks.jpg'))
    sample.gt_instances = InstanceData(masks=BitmapMasks(masks.numpy(), *masks.shape[1:]))
    return sample


@pytest.mark.parametrize('box_prob', [0.0, 1.0])
def test_training_prompts_lie_in_their_masks(box_prob):
    model = tiny_pretrainer(box_prob=box_prob).train()
    masks = two_masks()
    sample = sample_with(masks)  # resized x8: 20 x 30 -> 160 x 240
    for _ in range(20):
        (points, labels), boxes = model.prompts_from_masks(sample)
        assert points.shape == (2, 1, 2) and labels.tolist() == [[1.0], [1.0]]
        xy = (points[:, 0] / 8 - 0.5).long()  # back to original pixels
        assert masks[torch.arange(2), xy[:, 1], xy[:, 0]].all()
        assert (boxes is None) == (box_prob == 0.0)
        if boxes is not None:
            exact = mask_boxes(masks, 0.0) * 8
            assert ((boxes - exact).abs() <= 0.1 * 8 * 17 + 1e-4).all()
    model.eval()
    (points, _), boxes = model.prompts_from_masks(sample)
    assert boxes is None and points[:, 0].tolist() == [[11.5 * 8, 5.5 * 8], [24.5 * 8, 14.5 * 8]]
    with pytest.raises(ValueError, match='two_masks.jpg'):
        model.prompts_from_masks(sample_with(torch.zeros(1, 20, 30, dtype=torch.bool)))


@pytest.fixture(scope='module')
def tiny_sam_run(synthref_root, tmp_path_factory):
    """configs/sam/sam-tiny_synthref.py for 2 iterations on the test's SynthRef."""
    work_dir = tmp_path_factory.mktemp('sam_tiny')
    cfg = Config.fromfile(str(CONFIG))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = str(synthref_root)
    cfg.val_dataloader.dataset.indices = 2
    cfg.merge_from_dict({
        'work_dir': str(work_dir), 'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 2, 'default_hooks.logger.interval': 1})
    runner = Runner.from_cfg(cfg)
    runner.train()
    return dict(runner=runner, checkpoint=work_dir / 'iter_2.pth', work_dir=work_dir)


def test_runner_trains_and_validates(tiny_sam_run):
    runner = tiny_sam_run['runner']
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert 0.0 <= runner.message_hub.get_scalar('val/synthref_val/cIoU').current() <= 100.0
    assert tiny_sam_run['checkpoint'].is_file()


def convert(src: Path, dst: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, 'tools/model_converters/mmevf2sam.py', str(src),
                           str(dst), *extra], cwd=ROOT, capture_output=True, text=True)


def test_converted_checkpoint_is_sam_layout_and_starts_evf_sam(tiny_sam_run, tmp_path):
    from segment_anything.modeling import Sam
    dst = tmp_path / 'sam_tiny.pth'
    assert convert(tiny_sam_run['checkpoint'], dst).returncode == 0
    state = torch.load(dst, weights_only=True)
    trained = tiny_sam_run['runner'].model.state_dict()
    # segment_anything's Sam with the tiny sizes takes the file strictly
    model = tiny_pretrainer()
    sam = Sam(model.image_encoder, model.prompt_head.prompt_encoder,
              model.prompt_head.mask_decoder)
    sam.load_state_dict(state, strict=True)
    assert torch.equal(state['mask_decoder.iou_token.weight'],
                       trained['prompt_head.mask_decoder.iou_token.weight'])
    # the tiny EVF-SAM reads it through init_cfg, as the paper's configs read sam_vit_h
    cfg = Config.fromfile(str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')).model
    for part in ('image_encoder', 'prompt_head'):
        cfg[part].init_cfg = dict(type='mmevf.StrictPretrained', checkpoint=str(dst),
                                  layout='sam', prefix=f'{part}.')
    cfg.image_encoder.frozen = True  # the paper's setting: SAM's image encoder stays frozen
    cfg.trainable = ('mm_encoder', 'projector', 'prompt_head')
    evf = MODELS.build(cfg)
    evf.init_weights()
    assert torch.equal(evf.image_encoder.pos_embed, trained['image_encoder.pos_embed'])
    assert torch.equal(evf.prompt_head.mask_decoder.iou_token.weight,
                       trained['prompt_head.mask_decoder.iou_token.weight'])
    assert not any(p.requires_grad for p in evf.image_encoder.parameters())


def convert_in_process(monkeypatch, src: Path, dst: Path, *extra: str) -> None:
    """tools/model_converters/mmevf2sam.py's main() in this process, with that command line
    (the real subprocess run above proves the script starts and writes SAM's layout)."""
    tool = load_tool('model_converters/mmevf2sam')
    with monkeypatch.context() as m:
        m.setattr(sys, 'argv', ['mmevf2sam.py', str(src), str(dst), *extra])
        tool.main()


def test_converter_refuses_overwrite_and_foreign_files(tiny_sam_run, tmp_path, monkeypatch):
    dst = tmp_path / 'sam_tiny.pth'
    dst.write_bytes(b'keep me')
    with pytest.raises(FileExistsError, match='exists'):
        convert_in_process(monkeypatch, tiny_sam_run['checkpoint'], dst)
    assert dst.read_bytes() == b'keep me'
    convert_in_process(monkeypatch, tiny_sam_run['checkpoint'], dst, '--force')
    trained = tiny_sam_run['runner'].model.state_dict()
    assert torch.equal(torch.load(dst, weights_only=True)['mask_decoder.iou_token.weight'],
                       trained['prompt_head.mask_decoder.iou_token.weight'])
    foreign = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {'backbone.weight': torch.zeros(1)}}, foreign)
    with pytest.raises(KeyError, match='foreign.pth'):
        convert_in_process(monkeypatch, foreign, tmp_path / 'out.pth')
    assert not (tmp_path / 'out.pth').exists()
