import gc
import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence, Tuple

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tool scripts and fixture modules are imported from the repository root, as dist_train.sh does.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# A Runner formats its config with yapf five times (log, dump, ...): ~0.4 s a Runner, over a
# minute across the in-process trainings. Their configs are written unformatted (still valid
# Python, read back the same); subprocess runs keep mmengine's formatting.
import mmengine.config.config as _mmengine_config  # noqa: E402
_mmengine_config.FormatCode = lambda text, **kwargs: (text, False)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze the heap the imports left: every dataset build (mmengine's BaseDataset
    serialisation) runs ``gc.collect()``, ~1 s a build over a test process's imports; frozen,
    those objects are not scanned again (what tests allocate later still is)."""
    gc.freeze()


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return ROOT


def free_port() -> int:
    """A free local TCP port for a distributed run's rendezvous."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_command(cmd: list, cwd: Path = ROOT, **env) -> str:
    """Run ``cmd`` with this Python as ``PYTHON`` and the repository importable; its output,
    asserting that it succeeded."""
    full_env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT), **env)
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def load_tool(name: str) -> ModuleType:
    """Import a script of ``tools/`` (not a package), e.g. ``'infer'``, ``'analysis/benchmark'``."""
    spec = importlib.util.spec_from_file_location(
        name.replace('/', '.'), ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(name: str, argv: Sequence[str], monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture) -> str:
    """``tools/<name>.py argv`` in this process (a fresh interpreter costs ~10 s of imports; each
    CLI keeps one real subprocess run elsewhere); what it printed to stdout."""
    monkeypatch.setattr(sys, 'argv', [f'tools/{name}.py', *map(str, argv)])
    capsys.readouterr()
    load_tool(name).main()
    return capsys.readouterr().out


def metric_table(output: str) -> dict:
    """tools/test.py's summary table (mmevf.evaluation.format_metric_table: a name column, then
    9-character columns, blank where a split lacks the metric) -> {split: {column: value}}."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('split '))
    columns = lines[start].split()[1:]
    assert all(len(c) <= 9 for c in columns), columns  # else the columns are not 9 wide
    width = len(lines[start]) - 9 * len(columns)
    rows = {}
    for line in lines[start + 2:]:
        if len(line) != len(lines[start]):
            break
        cells = [line[width + 9 * i:width + 9 * (i + 1)].strip() for i in range(len(columns))]
        rows[line[:width].strip()] = {c: float(v) for c, v in zip(columns, cells) if v}
    return rows


@pytest.fixture(scope='session')
def tiny_refcoco(tmp_path_factory) -> Path:
    """A RefCOCO-layout folder: train2014/<img>.jpg, refcoco/instances.json, refcoco/refs(unc).p.

    One 48x64 image with two boxes given as COCO polygons; ref 0 has two sentences."""
    import cv2
    root = tmp_path_factory.mktemp('coco')
    (root / 'train2014').mkdir()
    (root / 'refcoco').mkdir()
    image = np.zeros((48, 64, 3), np.uint8)
    image[8:24, 4:20] = (0, 0, 255)
    image[20:40, 36:60] = (255, 0, 0)
    file_name = 'COCO_train2014_000000000001.jpg'
    cv2.imwrite(str(root / 'train2014' / file_name), image)
    polygons = {1: [4, 8, 20, 8, 20, 24, 4, 24], 2: [36, 20, 60, 20, 60, 40, 36, 40]}
    instances = dict(
        images=[dict(id=1, file_name=file_name, height=48, width=64)],
        annotations=[
            dict(id=ann_id, image_id=1, category_id=1, segmentation=[poly], iscrowd=0,
                 area=float((poly[2] - poly[0]) * (poly[5] - poly[1])),
                 bbox=[poly[0], poly[1], poly[2] - poly[0], poly[5] - poly[1]])
            for ann_id, poly in polygons.items()
        ],
        categories=[dict(id=1, name='box')])
    (root / 'refcoco' / 'instances.json').write_text(json.dumps(instances))

    def ref(ref_id, ann_id, sentences):
        return dict(ref_id=ref_id, ann_id=ann_id, image_id=1, split='val', category_id=1,
                    file_name=file_name, sent_ids=list(range(len(sentences))),
                    sentences=[dict(raw=s, sent=s.lower(), sent_id=i, tokens=s.split())
                               for i, s in enumerate(sentences)])

    refs = [ref(0, 1, ['Left red box', 'small box']), ref(1, 2, ['right blue box'])]
    with open(root / 'refcoco' / 'refs(unc).p', 'wb') as f:
        pickle.dump(refs, f)
    return root


@pytest.fixture
def in_tmp_dir(tmp_path):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


TOKENIZER_CORPUS = [
    'the red circle left of the blue square', 'the larger triangle on the right',
    'man in red shirt', 'leftmost zebra', 'small green square at the bottom',
    'the blue triangle above the yellow circle', '[semantic] sky', '[semantic] person hair',
]


@pytest.fixture(scope='session')
def xlmr_tokenizer_dir(tmp_path_factory) -> Path:
    """A tiny XLM-R tokenizer folder: a unigram sentencepiece model trained here (XLM-R's
    `sentencepiece.bpe.model` is a unigram model despite its name), no config files."""
    import sentencepiece as spm
    folder = tmp_path_factory.mktemp('xlmr')
    corpus = folder / 'corpus.txt'
    corpus.write_text('\n'.join(TOKENIZER_CORPUS * 20))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / 'sentencepiece.bpe'), vocab_size=40,
        model_type='unigram', character_coverage=1.0, minloglevel=2)
    corpus.unlink()
    (folder / 'sentencepiece.bpe.vocab').unlink()
    return folder


@pytest.fixture(scope='session')
def synthref_root(tmp_path_factory) -> Path:
    """A small SynthRef dataset (40 images) in the refer layout."""
    from tools.dataset_converters.synthref import make_synthref
    root = tmp_path_factory.mktemp('synthref')
    make_synthref(str(root), num_images=40, seed=1)
    return root


def synthref_dataset_cfg(root: Path, split: str = 'val', pipeline=(), **kwargs) -> dict:
    return dict(type='ReferSegDataset', data_root=str(root), data_prefix=dict(img_path='images/'),
                ann_file='synthref/instances.json', split_file='synthref/refs(unc).p',
                split=split, pipeline=list(pipeline), **kwargs)


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Random weights (seed 0) of ``configs/evf_sam/evf-tiny_synthref.py`` in MMEngine's
    checkpoint layout: the one tiny EVF-SAM checkpoint the inference, demo and tool tests share."""
    import torch
    from mmengine.config import Config

    from mmevf.engine.runner_setup import register_all_modules
    from mmevf.registry import MODELS
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')).model)
    path = tmp_path_factory.mktemp('tiny_checkpoint') / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


NO_TARGET_PROBABILITY = 0.93  # what no_target_model's head says for every expression


@pytest.fixture(scope='session')
def no_target_model(tiny_checkpoint, tmp_path_factory) -> Tuple[Path, Path]:
    """The tiny EVF-SAM with a no-target head: a config file (``configs/evf_sam/
    evf-tiny_synthref.py`` + ``model.no_target_head=dict(type='NoTargetHead')``) and its
    checkpoint. The weights are tiny_checkpoint's, so its masks are that model's; the head's
    last Linear is zero but for its bias, logit(0.93): every expression "no target" with
    probability 0.93, whatever the input (:func:`force_no_target` flips it per expression)."""
    import torch
    from mmengine.config import Config

    from mmevf.engine.runner_setup import register_all_modules
    from mmevf.registry import MODELS
    register_all_modules()
    folder = tmp_path_factory.mktemp('no_target_model')
    config = folder / 'evf-tiny_synthref_no-target.py'
    base = str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')
    config.write_text(f"_base_ = [{base!r}]\n"
                      f"model = dict(no_target_head=dict(type='NoTargetHead'))\n")
    model = MODELS.build(Config.fromfile(str(config)).model)
    state = torch.load(tiny_checkpoint, weights_only=True)['state_dict']
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and missing and all(k.startswith('no_target_head.') for k in missing)
    last = model.no_target_head.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(np.log(NO_TARGET_PROBABILITY / (1 - NO_TARGET_PROBABILITY)))
    weights = folder / 'no_target.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), weights)
    return config, weights


def force_no_target(monkeypatch: pytest.MonkeyPatch, flags: Sequence[bool]) -> None:
    """Every ``NoTargetHead`` of no_target_model decides per expression, expression i of each
    image being "no target" (p 0.93) if ``flags[i]``, else a target (p 0.07): the sign of the
    checkpoint's logit flipped for the others. Patched on the class, so that a model a tool
    builds inside a call decides so too."""
    import torch

    from mmevf.models.heads import NoTargetHead
    forward = NoTargetHead.forward

    def forced(self, tokens: 'torch.Tensor') -> 'torch.Tensor':
        logits = forward(self, tokens)
        signs = torch.tensor([1. if flag else -1. for flag in flags][:len(logits)],
                             dtype=logits.dtype, device=logits.device)
        return logits * signs

    monkeypatch.setattr(NoTargetHead, 'forward', forced)
