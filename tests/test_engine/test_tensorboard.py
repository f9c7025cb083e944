"""configs/_base_/tensorboard.py switches TensorBoard logging on for any config."""
import glob

from mmengine.config import Config
from mmengine.runner import Runner

from tests.fixtures.tiny_runs import ROOT, tiny_cfg


def test_tensorboard_base_writes_event_files(synthref_root, tmp_path):
    cfg = tiny_cfg(synthref_root, tmp_path)
    cfg.merge_from_dict(Config.fromfile(str(ROOT / 'configs/_base_/tensorboard.py')).to_dict())
    # visualizers are per-process singletons by name: another test may have built 'visualizer'
    cfg.visualizer.name = 'tensorboard_test_visualizer'
    runner = Runner.from_cfg(cfg)
    backends = {type(b).__name__ for b in runner.visualizer._vis_backends.values()}
    assert backends == {'LocalVisBackend', 'TensorboardVisBackend'}
    runner.visualizer.add_scalars({'synthref_val/cIoU': 12.5}, step=1)
    runner.visualizer.close()
    assert glob.glob(f'{runner.log_dir}/vis_data/events.out.tfevents.*')
