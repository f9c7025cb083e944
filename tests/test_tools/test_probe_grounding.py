"""tools/analysis/probe_grounding.py: its targets computed by hand, and a short run of each
readout on a small SynthRef."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from tests.conftest import load_tool, synthref_dataset_cfg

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def probe():
    return load_tool('analysis/probe_grounding')


def test_mask_centre_of_polygons_and_rle(probe):
    # two polygons spanning x 0..10 and 30..40, y 0..20 in a 40 x 80 (w x h) image
    polygons = [[0, 0, 10, 0, 10, 20, 0, 20], [30, 5, 40, 5, 40, 10]]
    assert probe.mask_centre(polygons, 40, 80) == pytest.approx((20 / 40, 10 / 80))
    binary = np.zeros((80, 40), np.uint8)
    binary[8:16, 4:12] = 1  # bbox x 4..12, y 8..16
    rle = mask_utils.encode(np.asfortranarray(binary))
    assert probe.mask_centre(rle, 40, 80) == pytest.approx((8 / 40, 12 / 80))


def test_items_point_at_the_referred_or_largest_object(probe, synthref_root):
    coco = json.loads((synthref_root / 'synthref' / 'instances.json').read_text())
    images = {image['id']: image for image in coco['images']}
    by_file = {}
    for ann in coco['annotations']:
        image = images[ann['image_id']]
        x, y, w, h = ann['bbox']
        by_file.setdefault(image['file_name'], []).append(
            ((x + w / 2) / image['width'], (y + h / 2) / image['height'], ann['area']))
    cfg = synthref_dataset_cfg(synthref_root, split='train')
    referred = probe.load_items(cfg, 'referred')
    largest = probe.load_items(cfg, 'largest')
    assert len(referred) == len(largest) > 0
    assert [(p, t) for p, t, _ in referred] == [(p, t) for p, t, _ in largest]

    def area_at(objects, centre) -> float:
        """Area of the image's object whose bbox centre is ``centre``."""
        distance, area = min((abs(cx - centre[0]) + abs(cy - centre[1]), a)
                             for cx, cy, a in objects)
        assert distance < 1e-3
        return area

    for (path, _, centre), (_, _, big) in zip(referred, largest):
        objects = by_file[Path(path).name]
        # both targets are objects of the image; the largest one is at least as large as any
        # referred one, and all expressions of an image share it
        assert area_at(objects, big) >= area_at(objects, centre)
    for path in {p for p, _, _ in largest}:
        assert len({c for p, _, c in largest if p == path}) == 1


@pytest.mark.parametrize('readout', ['cls', 'cls-cells', 'patches'])
def test_probe_runs_and_reports(probe, synthref_root, readout, capsys):
    threads = torch.get_num_threads()
    try:
        probe.main([
            str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py'), '--readout', readout,
            '--steps', '2', '--interval', '1', '--batch-size', '4', '--val-size', '20',
            '--tokenizer', str(synthref_root / 'tokenizer'), '--cfg-options',
            f'train_dataloader.dataset.data_root={synthref_root}/',
            f'val_dataloader.dataset.data_root={synthref_root}/'
        ])
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.strip().splitlines()
    assert f'readout={readout} target=referred' in lines[0] and '4x4 patches' in lines[0]
    assert re.search(r'chance @0\.1: [\d.]+ @0\.2: [\d.]+$', lines[0])
    steps = [re.fullmatch(r'step +(\d+) +\d+s loss ([\d.]+) val within @0\.1: ([\d.]+) '
                          r'@0\.2: ([\d.]+)', line) for line in lines[1:]]
    assert [int(m.group(1)) for m in steps] == [1, 2]
    for m in steps:
        assert np.isfinite(float(m.group(2)))
        assert 0 <= float(m.group(3)) <= float(m.group(4)) <= 1


def test_unreadable_image_is_named(probe, synthref_root, tmp_path):
    data = probe.ProbeData(str(synthref_root / 'tokenizer'), 64)
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(FileNotFoundError, match='broken.jpg'):
        data.view(str(broken))
