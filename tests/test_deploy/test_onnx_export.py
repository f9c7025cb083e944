"""EVF-SAM exported to ONNX (tools/deployment/export_onnx.py) and run by ONNX Runtime, on the
tiny config with the tiny_checkpoint: logits within 1e-3 of PyTorch and identical masks wherever
|logit| > 1e-3 (text alone with one and five expressions, text + points, text + box, points
alone, box alone, a mix; two aspect ratios), the numpy pre-processing equal to the PyTorch
pipeline's, ``TextSegInferencer(backend='onnxruntime')`` and ``tools/infer.py --backend
onnxruntime`` behind the PyTorch interface, the folder run on its own in a process that cannot
import torch or mmevf, the int8 encoders, and bad folders / images refused by name.

The paper-scale parity (random-weight BEiT-3-B + SAM-B) runs in
``tools/deployment/check_onnx_parity.py evf-beit3b_sam-b_refcoco`` (its export alone takes
about a minute on two cores); this module shares its cases and comparison."""
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch

from mmevf.apis import TextSegInferencer, pair_inputs
from mmevf.apis.onnx_inferencer import OnnxTextSegInferencer
from mmevf.deploy.export import TOKENIZER_CHECK, check_exportable, export_onnx
from mmevf.deploy.onnx_predictor import (DeployFolderError, OnnxEVFSAM, Tokenizer,
                                         multimodal_view)
from tests.conftest import load_tool, run_tool

CONFIG = 'evf-tiny_synthref'
GRAPH_FILES = ('image_encoder.onnx', 'text_encoder.onnx', 'mask_decoder.onnx')
INT8_FILES = ('image_encoder_int8.onnx', 'text_encoder_int8.onnx')
# what the exported folder may not import (the subprocess test blocks them)
BLOCKED = ('torch', 'torchvision', 'mmevf', 'mmcv', 'mmengine', 'mmdet', 'transformers')


@pytest.fixture(scope='module')
def parity():
    """tools/deployment/check_onnx_parity.py: the cases and the comparison."""
    return load_tool('deployment/check_onnx_parity')


@pytest.fixture(scope='module')
def torch_inferencer(tiny_checkpoint, xlmr_tokenizer_dir) -> TextSegInferencer:
    return TextSegInferencer(CONFIG, weights=str(tiny_checkpoint),
                             tokenizer=str(xlmr_tokenizer_dir), device='cpu',
                             show_progress=False)


@pytest.fixture(scope='module')
def export_dir(tiny_checkpoint, xlmr_tokenizer_dir, tmp_path_factory) -> Path:
    """tools/deployment/export_onnx.py CONFIG CHECKPOINT --int8, once for the module."""
    out = tmp_path_factory.mktemp('onnx') / 'tiny'
    load_tool('deployment/export_onnx').main([
        CONFIG, str(tiny_checkpoint), '--out-dir', str(out), '--int8', '--tokenizer',
        str(xlmr_tokenizer_dir)])
    return out


@pytest.fixture(scope='module')
def predictor(export_dir) -> OnnxEVFSAM:
    return OnnxEVFSAM(str(export_dir))


@pytest.fixture(scope='module')
def onnx_inferencer(export_dir) -> TextSegInferencer:
    return TextSegInferencer(str(export_dir), backend='onnxruntime', show_progress=False)


@pytest.fixture(scope='module')
def other_model(parity, xlmr_tokenizer_dir, tmp_path_factory):
    """Another model size, with a no-target head: the tiny config with SAM at 128², a 2-layer
    multimodal encoder and ``NoTargetHead`` (random weights); its PyTorch inferencer and its
    export, whose graphs keep their weights in external-data files (threshold 0)."""
    folder = tmp_path_factory.mktemp('other')
    config = folder / 'evf-tiny-small.py'
    base = Path(__file__).resolve().parents[2] / 'configs/evf_sam/evf-tiny_synthref.py'
    config.write_text(f'_base_ = [{str(base)!r}]\n'
                      f'model = dict(mm_encoder=dict(arch=dict(num_layers=2)),\n'
                      f"             no_target_head=dict(type='NoTargetHead'))\n")
    torch.manual_seed(1)
    inferencer = parity.build_inferencer(str(config), tokenizer=str(xlmr_tokenizer_dir),
                                         sam_size=128)
    export_onnx(inferencer, str(folder / 'export'), external_data_threshold=0, log=None)
    return inferencer, folder / 'export'


@pytest.fixture(scope='module')
def other_export(other_model) -> Path:
    return other_model[1]


@pytest.fixture(scope='module')
def images(synthref_root) -> list:
    """A SynthRef image (a file) and the parity tool's two arrays (landscape, portrait)."""
    return [str(sorted((synthref_root / 'images').glob('*.jpg'))[0])]


def linked_copy(source: Path, target: Path, skip=()) -> Path:
    """``source``'s files as symlinks in ``target`` (but ``skip``)."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.name not in skip:
            (target / path.name).symlink_to(path, target_is_directory=path.is_dir())
    return target


# ---------------------------------------------------------------------- the export
def test_export_folder(export_dir, predictor):
    names = {p.name for p in export_dir.iterdir()}
    assert set(GRAPH_FILES + INT8_FILES) | {'deploy.json', 'tokenizer', 'predict.py'} <= names
    assert (export_dir / 'tokenizer' / 'sentencepiece.bpe.model').is_file()
    deploy = json.loads((export_dir / 'deploy.json').read_text())
    assert deploy['model']['config'] == CONFIG and deploy['model']['type'] == 'EVFSAM'
    assert deploy['model']['checkpoint'] == 'tiny.pth'
    image = deploy['image']
    assert (image['sam_size'], image['mm_size'], image['bgr_to_rgb']) == (256, 64, True)
    assert image['mean'] == pytest.approx([123.675, 116.28, 103.53])
    assert image['mm_std'] == pytest.approx([0.5, 0.5, 0.5])
    assert deploy['mask_threshold'] == 0.0 and deploy['no_target_threshold'] is None
    assert deploy['prompt'] == dict(dim=64, tokens_per_text=1)
    tokenizer = deploy['tokenizer']
    assert (tokenizer['kind'], tokenizer['pad_id'], tokenizer['max_length']) == \
        ('xlmr-sentencepiece', 1, None)
    graphs = deploy['graphs']
    assert graphs['image_encoder']['inputs']['image']['shape'] == [1, 3, 256, 256]
    assert graphs['image_encoder']['outputs']['image_embeddings']['shape'] == [1, 64, 16, 16]
    assert graphs['text_encoder']['inputs']['text_ids']['shape'] == ['num_texts', 'text_length']
    assert graphs['mask_decoder']['outputs']['masks']['shape'] == [
        'num_prompts', 1, 'height', 'width']
    for name in ('image_encoder', 'text_encoder'):  # int8: smaller, same signature
        assert graphs[f'{name}_int8']['weight_bytes'] < graphs[name]['weight_bytes'] / 2
        assert graphs[f'{name}_int8']['inputs'] == graphs[name]['inputs']
    # each graph carries its fingerprint (what the predictor checks on loading)
    for name, session in predictor.sessions.items():
        meta = session.get_modelmeta().custom_metadata_map
        assert meta['mmevf.fingerprint'] == graphs[name]['fingerprint']
        assert meta['mmevf.config'] == CONFIG
    assert (export_dir / 'predict.py').read_text() == \
        Path(sys.modules[OnnxEVFSAM.__module__].__file__).read_text()


def test_export_refuses_other_models():
    with pytest.raises(ValueError, match='EVF-SAM'):
        check_exportable(torch.nn.Linear(2, 2))


# ---------------------------------------------------------------------- parity
def test_preprocessing_matches_pytorch(torch_inferencer, predictor, parity, images):
    """The export's numpy pre-processing against the PyTorch pipeline + data preprocessor:
    the SAM input bit for bit, the multimodal view within float rounding, the token ids."""
    model = torch_inferencer.model
    texts = list(TOKENIZER_CHECK[:4])
    for image in images + parity.random_images():
        data = next(iter(torch_inferencer.preprocess(pair_inputs(image, texts))))
        inputs = model.data_preprocessor(data, False)['inputs']
        prepared = predictor.prepare(mmcv.imread(image) if isinstance(image, str) else image)
        np.testing.assert_array_equal(prepared.sam_input, inputs['img'].numpy())
        np.testing.assert_allclose(prepared.mm_input, inputs['mm_img'].numpy(), atol=2e-5)
        ids, padding = predictor.tokenizer(texts)
        np.testing.assert_array_equal(ids, inputs['text_ids'].numpy())
        np.testing.assert_array_equal(padding, inputs['text_padding_mask'].numpy())
        assert prepared.img_shape == tuple(data['data_samples'][0].img_shape)
    # torch's bicubic when enlarging too (an image smaller than the view)
    small = np.random.default_rng(1).integers(0, 256, (20, 50, 3), dtype=np.uint8)
    view = torch.nn.functional.interpolate(
        torch.from_numpy(small[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255,
        (64, 64), mode='bicubic', align_corners=False)
    np.testing.assert_allclose(multimodal_view(small, 64, [0.0] * 3, [1.0] * 3),
                               view.numpy(), atol=1e-5)


def test_logits_match_pytorch(torch_inferencer, predictor, parity, images):
    """Every case of check_onnx_parity.py (text E=1 / E=5, text + points, text + box, points
    alone, box alone, a mix) on a SynthRef image and two arrays of other aspect ratios."""
    arrays = [mmcv.imread(images[0])] + parity.random_images()
    records = parity.run_cases(torch_inferencer, predictor, arrays, log=None)
    assert len(records) == 3 * len(parity.CASES)
    failed = [parity.format_record(r) for r in records if not r['ok']]
    assert not failed, '\n'.join(failed)
    assert max(r['max_diff'] for r in records) <= parity.TOLERANCE
    assert max(r['score_diff'] for r in records) <= 1e-4


def test_int8_encoders(export_dir, predictor, parity, images, capsys):
    """The quantised encoders run (their masks' IoU against fp32 is printed: random weights,
    no threshold)."""
    int8 = OnnxEVFSAM(str(export_dir), 'int8')
    assert int8.sessions['mask_decoder'] is not None
    ious = []
    for image in [images[0]] + parity.random_images():
        texts = ['red circle', 'the blue square', None]
        points = [None, [(5, 6)], [(10, 12), (3, 4, 0)]]
        fp32 = predictor.predict(image, texts, points)
        quantized = int8.predict(image, texts, points)
        assert quantized['masks'].shape == fp32['masks'].shape
        ious.append(parity.mask_iou(quantized['masks'], fp32['masks']))
    mean = float(np.concatenate(ious).mean())
    assert 0.0 <= mean <= 1.0
    with capsys.disabled():
        print(f'\n[int8 vs fp32, tiny random weights] mean mask IoU {mean:.3f}')


def test_no_target_head_and_external_data(other_model, parity):
    """A model with a no-target head: the decoder graph gives its logits, and the ONNX backend
    reports ``no_target`` / ``no_target_scores`` as the PyTorch one (the graphs' weights in
    external-data files)."""
    torch_inferencer, folder = other_model
    assert all((folder / f'{name}.data').is_file() for name in GRAPH_FILES)
    onnx_inferencer = TextSegInferencer(str(folder), backend='onnxruntime', show_progress=False)
    image, texts, points = parity.random_images()[1], ['red circle', None], [None, [(4, 5)]]
    ours, theirs = (inferencer(image, texts, points=points)['predictions'][0]
                    for inferencer in (onnx_inferencer, torch_inferencer))
    assert set(ours) == set(theirs) and {'no_target', 'no_target_scores'} <= set(ours)
    assert ours['no_target'] == theirs['no_target']
    np.testing.assert_allclose(ours['no_target_scores'], theirs['no_target_scores'], atol=1e-5)
    logits, _ = parity.torch_outputs(torch_inferencer, image, texts, points)
    confident = np.abs(logits) > parity.TOLERANCE
    np.testing.assert_array_equal(ours['masks'][confident], theirs['masks'][confident])
    assert ours['masks'].shape == (2, 70, 40)


def test_tokenizers_json_route(xlmr_tokenizer_dir, predictor, tmp_path):
    """The tokenizer route for other tokenizers (transformers' tokenizer.json through the
    ``tokenizers`` library) gives the XLM-R route's ids."""
    from mmevf.utils.tokenizer import build_tokenizer
    build_tokenizer(str(xlmr_tokenizer_dir)).backend_tokenizer.save(
        str(tmp_path / 'tokenizer.json'))
    settings = dict(kind='tokenizers-json', pad_id=1, max_length=None)
    json_route = Tokenizer(str(tmp_path), settings)
    for text in TOKENIZER_CHECK:
        assert json_route.encode(text) == predictor.tokenizer.encode(text)
    truncated = Tokenizer(str(tmp_path), dict(settings, max_length=4))
    xlmr = Tokenizer(str(predictor.model_dir) + '/tokenizer',
                     dict(predictor.deploy['tokenizer'], max_length=4))
    assert truncated.encode(TOKENIZER_CHECK[0]) == xlmr.encode(TOKENIZER_CHECK[0])
    assert len(xlmr.encode(TOKENIZER_CHECK[0])) == 4


# ---------------------------------------------------------------------- the interface
def test_inferencer_backend(torch_inferencer, onnx_inferencer, predictor, parity, images,
                            tmp_path):
    """``TextSegInferencer(DIR, backend='onnxruntime')``: the PyTorch backend's predictions
    (masks where |logit| > 1e-3, scores), drawings and files, for text, points and boxes."""
    assert isinstance(onnx_inferencer, OnnxTextSegInferencer)
    arrays = parity.random_images()
    inputs = [images[0], arrays[1]]
    texts = [['red circle', None, 'blue square'], ['triangle', None]]
    points = [[None, [(30, 40), (60, 20, 0)], None], [[(10, 12)], None]]
    boxes = [[None, None, (10, 10, 120, 80)], [None, (2, 3, 30, 50)]]
    outs = {}
    for name, inferencer in (('torch', torch_inferencer), ('onnx', onnx_inferencer)):
        outs[name] = inferencer(inputs, texts, points=points, boxes=boxes, return_vis=True,
                                out_dir=str(tmp_path / name))
    for i, (ours, theirs) in enumerate(zip(outs['onnx']['predictions'],
                                           outs['torch']['predictions'])):
        assert set(ours) == set(theirs) == {'img_path', 'stem', 'texts', 'masks', 'scores',
                                            'points', 'boxes'}
        assert ours['texts'] == theirs['texts'] and ours['stem'] == theirs['stem']
        assert ours['points'] == theirs['points'] and ours['boxes'] == theirs['boxes']
        np.testing.assert_allclose(ours['scores'], theirs['scores'], atol=1e-4)
        logits, _ = parity.torch_outputs(torch_inferencer, inputs[i], texts[i], points[i],
                                         boxes[i])
        confident = np.abs(logits) > parity.TOLERANCE
        np.testing.assert_array_equal(ours['masks'][confident], theirs['masks'][confident])
    for ours, theirs in zip(outs['onnx']['visualization'], outs['torch']['visualization']):
        assert [d.shape for d in ours] == [d.shape for d in theirs]
    files = {name: sorted(str(p.relative_to(tmp_path / name))
                          for p in (tmp_path / name).rglob('*') if p.is_file())
             for name in outs}
    assert files['onnx'] == files['torch'] and len(files['onnx']) == 2 * 5 + 2
    stem = Path(images[0]).stem
    record = json.loads((tmp_path / 'onnx' / 'preds' / f'{stem}.json').read_text())
    assert record['texts'] == texts[0] and record['boxes'][2] == [10.0, 10.0, 120.0, 80.0]


def test_each_graph_runs_as_pytorch_runs_the_model(onnx_inferencer, images):
    """One image-encoder run and one text-encoder run per image, one decoder run per layout
    (text or not, point count, box or not)."""
    calls = []
    sessions = onnx_inferencer.model.sessions

    class Counted:
        def __init__(self, name, session):
            self.name, self.session = name, session

        def run(self, *args, **kwargs):
            calls.append(self.name)
            return self.session.run(*args, **kwargs)

    onnx_inferencer.model.sessions = {name: Counted(name, s) for name, s in sessions.items()}
    try:
        onnx_inferencer([images[0], images[0]],
                        [['a', 'b', None, 'c'], ['d', None]],
                        points=[[None, None, [(3, 4)], [(5, 6)]], [None, [(7, 8)]]])
    finally:
        onnx_inferencer.model.sessions = sessions
    assert calls.count('image_encoder') == 2 and calls.count('text_encoder') == 2
    # image 0: text, points only, text + point; image 1: text, points only
    assert calls.count('mask_decoder') == 3 + 2


def test_input_errors_as_pytorch(torch_inferencer, onnx_inferencer, images, tmp_path):
    """The same bad inputs fail with the PyTorch backend's exception and message."""
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'\xff\xd8 this is not a jpeg')
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    cases = [([images[0], str(tmp_path / 'nowhere.jpg')], 'red circle', None),
             (str(corrupt), 'red circle', None), (str(empty), 'red circle', None),
             (images[0], ['red circle', '  '], None), (images[:1] * 2, ['a', 'b', 'c'], None),
             (np.zeros((8, 8, 3), np.float32), 'red circle', None),
             (images[0], 'red circle', [(1e6, 2)])]
    for image, texts, points in cases:
        errors = []
        for inferencer in (torch_inferencer, onnx_inferencer):
            with pytest.raises((ValueError, FileNotFoundError)) as info:
                inferencer(image, texts, points=points)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1]
    with pytest.raises(ValueError, match='cannot decode image .*corrupt.jpg'):
        OnnxEVFSAM.predict(onnx_inferencer.model, str(corrupt), ['red circle'])
    with pytest.raises(ValueError, match='weights= is for the pytorch backend'):
        TextSegInferencer(str(tmp_path), weights='x.pth', backend='onnxruntime')
    with pytest.raises(ValueError, match="backend must be one of"):
        TextSegInferencer(str(tmp_path), backend='tensorrt')


def test_infer_cli(export_dir, images, tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / 'out'
    printed = run_tool('infer', [images[0], 'red circle', '--point', '30,40', '--backend',
                                 'onnxruntime', '--model-dir', str(export_dir), '--out-dir',
                                 str(out_dir), '--dtype', 'int8'], monkeypatch, capsys)
    stem = Path(images[0]).stem
    assert f'vis/{stem}_0.png  masks/{stem}_0.png  "red circle" + 1 point (1+ 0-)' in printed
    for folder in ('vis', 'masks'):
        assert (out_dir / folder / f'{stem}_0.png').is_file()
    for argv, message in ((['--backend', 'onnxruntime', '--config', CONFIG], '--model-dir'),
                          (['--model-dir', str(export_dir)], '--config'),
                          (['--backend', 'onnxruntime', '--model-dir', 'x', '--dtype', 'bf16'],
                           'fp32 or int8')):
        with pytest.raises(SystemExit):
            run_tool('infer', [images[0], 'a', '--out-dir', str(out_dir), *argv], monkeypatch,
                     capsys)
        assert message in capsys.readouterr().err


# ---------------------------------------------------------------------- the folder alone
# Runs DIR/predict.py (argv[1]) as __main__ in an interpreter that cannot import BLOCKED
BLOCKING_RUNNER = textwrap.dedent('''
    import importlib.abc, runpy, sys
    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ModuleNotFoundError(f'{{name}} is blocked', name=name)
            return None

    assert not [m for m in sys.modules if m.split('.')[0] in BLOCKED]
    sys.meta_path.insert(0, Blocker())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name='__main__')
''').format(blocked=BLOCKED)


def test_folder_runs_without_torch_and_mmevf(export_dir, predictor, images, tmp_path):
    """DIR/predict.py in a process whose imports of torch, mmevf, mmcv, mmengine, mmdet and
    transformers fail: the masks and scores of the predictor in this process."""
    folder = shutil.copytree(export_dir, tmp_path / 'moved')  # the folder alone, moved
    out_dir = tmp_path / 'out'
    env = {k: v for k, v in os.environ.items() if not k.startswith('PYTHON')}
    env.update(MMEVF_IMPORT_HOOK='0', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-c', BLOCKING_RUNNER, str(folder / 'predict.py'), images[0],
         'red circle', 'blue square', '--point', '30,40', '--out-dir', str(out_dir)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    stem = Path(images[0]).stem
    predict_main = runpy.run_path(str(folder / 'predict.py'))['main']  # in this process
    expected = predictor.predict(images[0], ['red circle', 'blue square'],
                                 [[(30, 40)], [(30, 40)]])
    for i in range(2):
        mask = mmcv.imread(str(out_dir / 'masks' / f'{stem}_{i}.png'), flag='unchanged')
        np.testing.assert_array_equal(mask > 0, expected['masks'][i])
    record = json.loads((out_dir / 'preds' / f'{stem}.json').read_text())
    assert record['texts'] == ['red circle', 'blue square']
    np.testing.assert_allclose(record['scores'], expected['scores'], atol=1e-6)
    assert f'[1] score {expected["scores"][1]:.3f}' in proc.stdout
    # its CLI names what it cannot use, and exits with status 1
    corrupt = tmp_path / 'corrupt.png'
    corrupt.write_bytes(b'\x89PNG not really')
    for image, argv, message in (
            (str(corrupt), [], f'error: cannot decode image {corrupt}: not an image file'),
            (images[0], ['--model-dir', str(tmp_path)], f'{tmp_path}/deploy.json is missing'),
            (images[0], ['--int8', '--model-dir', str(export_dir.parent / 'nowhere')],
             'does not exist')):
        with pytest.raises(SystemExit, match=message):
            predict_main([image, 'red circle', '--out-dir', str(out_dir), *argv])


# ---------------------------------------------------------------------- bad folders
def test_bad_folders_are_named(export_dir, other_export, tmp_path):
    with pytest.raises(FileNotFoundError, match=f'{tmp_path}/nothing/deploy.json is missing'):
        (tmp_path / 'nothing').mkdir()
        OnnxEVFSAM(str(tmp_path / 'nothing'))
    no_json = linked_copy(export_dir, tmp_path / 'no_json', skip=('deploy.json', ))
    with pytest.raises(FileNotFoundError, match=f'{no_json}/deploy.json is missing'):
        TextSegInferencer(str(no_json), backend='onnxruntime')
    no_graph = linked_copy(export_dir, tmp_path / 'no_graph', skip=('mask_decoder.onnx', ))
    for build in (OnnxEVFSAM, lambda d: TextSegInferencer(d, backend='onnxruntime')):
        with pytest.raises(FileNotFoundError, match=f'{no_graph}/mask_decoder.onnx is missing'):
            build(str(no_graph))
    with pytest.raises(DeployFolderError, match=r'lists no graph image_encoder_int8\.onnx '
                       r'\(export with --int8\)'):
        OnnxEVFSAM(str(other_export), 'int8')
    # a graph of another model size: its input differs, or only its weights
    foreign_image = linked_copy(export_dir, tmp_path / 'foreign_image',
                                skip=('image_encoder.onnx', ))
    for name in ('image_encoder.onnx', 'image_encoder.onnx.data'):
        (foreign_image / name).symlink_to(other_export / name)
    with pytest.raises(DeployFolderError, match=rf"{foreign_image}/image_encoder.onnx: input "
                       r"'image' is 1x3x128x128, deploy.json expects 1x3x256x256: a graph from "
                       r'another model size \(exported from evf-tiny-small'):
        OnnxEVFSAM(str(foreign_image))
    foreign_text = linked_copy(export_dir, tmp_path / 'foreign_text',
                               skip=('text_encoder.onnx', ))
    for name in ('text_encoder.onnx', 'text_encoder.onnx.data'):
        (foreign_text / name).symlink_to(other_export / name)
    with pytest.raises(DeployFolderError, match=rf'{foreign_text}/text_encoder.onnx: '
                       r'fingerprint \w+, deploy.json expects \w+: a graph from another model'):
        OnnxEVFSAM(str(foreign_text))
    broken = linked_copy(export_dir, tmp_path / 'broken', skip=('deploy.json', ))
    (broken / 'deploy.json').write_text('{"format": ')
    with pytest.raises(DeployFolderError, match=f'{broken}/deploy.json: not a readable JSON'):
        OnnxEVFSAM(str(broken))


# ---------------------------------------------------------------------- the benchmark
def test_benchmark_reports_onnx(xlmr_tokenizer_dir, capsys):
    """tools/analysis/benchmark.py --onnx at the tiny scale: ORT fp32 and int8 timed with the
    PyTorch modes, then ort/torch, ort_int8/ort and the int8 masks' IoU against fp32."""
    benchmark = load_tool('analysis/benchmark')
    threads = torch.get_num_threads()
    try:
        benchmark.main(['evf-tiny_synthref', '--expressions', '2', '--images', '2',
                        '--image-size', '40', '60', '--repeats', '1', '--beit3-repeats', '1',
                        '--threads', '1', '--tokenizer', str(xlmr_tokenizer_dir), '--onnx'])
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r'beit3/torchscale: \d+\.\d+x', lines[-4])
    assert re.fullmatch(r'ort/torch: \d+\.\d+x', lines[-3])
    assert re.fullmatch(r'ort_int8/ort: \d+\.\d+x', lines[-2])
    iou = re.fullmatch(r'int8 mask IoU: (\d\.\d{3}) \(mean of 4 masks against fp32\)',
                       lines[-1])
    assert iou and 0 <= float(iou.group(1)) <= 1
    for mode in ('ort', 'ort_int8'):
        assert any(line.split()[0] == mode and 'expressions/s' in line for line in lines)
