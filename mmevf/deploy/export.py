"""Export an EVF-SAM model (SAM-1 family) to an ONNX folder that runs without mmevf or torch.

``export_onnx(inferencer, out_dir)`` writes, from a ``TextSegInferencer``'s model and pipeline:

- ``image_encoder.onnx``, ``text_encoder.onnx``, ``mask_decoder.onnx``
  (:mod:`mmevf.deploy.onnx_graphs`; a graph larger than 2 GB keeps its weights in
  ``<graph>.onnx.data`` beside it, ONNX's external-data format);
- with ``int8``: ``image_encoder_int8.onnx`` and ``text_encoder_int8.onnx``, ONNX Runtime's
  dynamic quantisation of their linear layers (MatMul with constant weights);
- ``deploy.json``: what pre- and post-processing need (sizes, normalisation, resize rules,
  mask threshold, tokenizer settings), the model's config name and each graph's signature and
  fingerprint (the exporter also writes the fingerprint into the graph's metadata, so that a
  graph from another model is refused by name);
- ``tokenizer/``: the tokenizer files, and ``predict.py``: :mod:`mmevf.deploy.onnx_predictor`,
  the standalone predictor and its CLI.

The graphs are traced by torch's TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``, deprecated since torch 2.9 but present in 2.14): it needs no ``onnxscript``,
and tracing records the text length, the numbers of expressions and points and the original
image size as dynamic dimensions, including the decoder's crop to the resized image, whose
size is computed from an input's *values* (a data-dependent shape, which ``torch.export``, the
dynamo exporter's front end, takes only through explicit checks). The dynamo exporter was not
tried.
"""
import hashlib
import io
import json
import os
import os.path as osp
import shutil
import tempfile
import time
import uuid
import warnings
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from . import onnx_predictor
from .onnx_graphs import (ImageEncoderGraph, MaskDecoderGraph, TextEncoderGraph,
                          reference_path)
from .onnx_predictor import (DEPLOY_FILE, FORMAT, FORMAT_VERSION, META_CONFIG,
                             META_FINGERPRINT, META_GRAPH, Tokenizer, graph_file, graph_key)

DEFAULT_OPSET = 17
# ONNX's protobuf limit; above it the weights go to an external-data file
EXTERNAL_DATA_THRESHOLD = 2**31 - 2**24
# Weights of the int8 encoders. Measured with ONNX Runtime 1.32 on an AVX2 AMD EPYC without
# VNNI (random-weight BEiT-3-B + SAM-B at 1024), mean relative error of the encoders' outputs
# against fp32: image encoder QUInt8 1.6 %, QInt8 13 %; text encoder QUInt8 2.1 %, QInt8 37 %.
# Without VNNI, ONNX Runtime's u8 x s8 kernels saturate (the reason its documentation gives
# for reduce_range); QUInt8 is the default. Their speeds could not be told apart on this
# shared 2-core machine (10-30 s an image-encoder run for both, fp32 25 s); on a VNNI / AMX
# CPU, QInt8 may be worth measuring (export_onnx.py --int8-weight-type).
INT8_WEIGHT_TYPE = 'QUInt8'
# expressions the exported tokenizer must tokenise exactly as the pipeline's TokenizeText
TOKENIZER_CHECK = ('the red circle left of the blue square', '[semantic] sky',
                   'Man in RED shirt, 2nd from left!', 'zebra   with  spaces', 'a',
                   'äöü ß café 漢字 😀', 'leftmost zebra behind the bus')
TOKENIZER_FILES = ('sentencepiece.bpe.model', 'tokenizer.json', 'tokenizer_config.json',
                   'special_tokens_map.json', 'vocab.txt', 'vocab.json', 'merges.txt')


def _step(pipeline, name: str):
    """The pipeline's transform of type ``name`` (``SAMResize``, ``TokenizeText``), or None."""
    steps = [t for t in getattr(pipeline, 'transforms', []) if type(t).__name__ == name]
    return steps[0] if steps else None


def check_exportable(model: nn.Module) -> None:
    """A ``ValueError`` unless ``model`` is an fp32 EVF-SAM of the SAM-1 family: SAM's image
    encoder, an ``encode_prompts`` for the text, ``SAMPromptHead`` (segment_anything's prompt
    encoder and mask decoder)."""
    from mmevf.models.heads.sam_prompt_head import SAMPromptHead
    name = type(model).__name__
    if not hasattr(model, 'encode_prompts') or not hasattr(model, 'image_encoder'):
        raise ValueError(f'ONNX export covers EVF-SAM models (a SAM image encoder, a '
                         f'multimodal encoder whose prompt tokens go to SAM\'s decoder); '
                         f'{name} is not one')
    if not isinstance(getattr(model, 'prompt_head', None), SAMPromptHead):
        raise ValueError(f'ONNX export covers the SAM-1 family (SAMPromptHead); {name}\'s '
                         f'prompt head is {type(getattr(model, "prompt_head", None)).__name__}')
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise ValueError(f'export an fp32 model (dtype=\'fp32\'), got {sorted(map(str, dtypes))}')


# ---------------------------------------------------------------------- ONNX files
def signature(proto) -> Dict[str, dict]:
    """A graph's inputs and outputs: ``{'inputs': {name: {dtype, shape}}, 'outputs': ...}``,
    a fixed dim as its int, a dynamic one as its name."""
    import onnx

    def values(items) -> dict:
        out = {}
        for value in items:
            tensor = value.type.tensor_type
            shape = [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?')
                     for d in tensor.shape.dim]
            out[value.name] = dict(dtype=onnx.TensorProto.DataType.Name(tensor.elem_type)
                                   .lower(), shape=shape)
        return out

    return dict(inputs=values(proto.graph.input), outputs=values(proto.graph.output))


def fingerprint(name: str, proto) -> str:
    """sha256 of what fixes a graph's model size: its signature and the name, shape and type
    of every weight."""
    weights = sorted((t.name, list(t.dims), t.data_type) for t in proto.graph.initializer)
    text = json.dumps(dict(graph=name, signature=signature(proto), weights=weights),
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def weight_bytes(proto) -> int:
    """Bytes of a loaded graph's weights."""
    from onnx import numpy_helper
    total = 0
    for tensor in proto.graph.initializer:
        total += len(tensor.raw_data) if tensor.raw_data else \
            numpy_helper.to_array(tensor).nbytes
    return total


def save_graph(proto, path: str, name: str, config: str,
               external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> dict:
    """Write a loaded graph with mmevf's metadata (graph, config, fingerprint) to ``path``, its
    weights in ``<file>.data`` when they exceed ``external_data_threshold`` bytes; its
    ``deploy.json`` entry."""
    import onnx
    stamp = fingerprint(name, proto)
    del proto.metadata_props[:]
    for key, value in ((META_GRAPH, name), (META_CONFIG, config), (META_FINGERPRINT, stamp)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    size = weight_bytes(proto)
    external = size > external_data_threshold
    for old in (path, f'{path}.data'):
        if osp.exists(old):
            os.remove(old)
    if external:
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f'{osp.basename(path)}.data', size_threshold=1024)
    else:
        onnx.save_model(proto, path)
    entry = dict(file=osp.basename(path), fingerprint=stamp, weight_bytes=size, **signature(proto))
    if external:
        entry['external_data'] = f'{osp.basename(path)}.data'
    return entry


def trace_to_onnx(module: nn.Module, args: Tuple[torch.Tensor, ...], tmp_dir: str, opset: int,
                  dynamic_axes: Dict[str, Dict[int, str]]):
    """TorchScript-based export of ``module`` called on ``args`` (its input / output names
    from the module) -> the loaded ``onnx.ModelProto``. Serialised in memory, unless the
    weights approach protobuf's 2 GB limit: then through a file in ``tmp_dir`` (the exporter
    writes their external data beside it, read back by ``onnx.load``)."""
    import onnx
    params = sum(t.numel() * t.element_size()
                 for t in list(module.parameters()) + list(module.buffers()))
    target = io.BytesIO() if params < EXTERNAL_DATA_THRESHOLD else osp.join(
        tempfile.mkdtemp(dir=tmp_dir), 'graph.onnx')
    with warnings.catch_warnings():
        # the legacy exporter's deprecation notice, and tracing's notes on Python values
        # (shape checks, the padding branch): the graphs are checked against PyTorch instead
        warnings.simplefilter('ignore')
        torch.onnx.export(module, args, target, dynamo=False, opset_version=opset,
                          input_names=list(module.input_names),
                          output_names=list(module.output_names), dynamic_axes=dynamic_axes,
                          do_constant_folding=True)
    if isinstance(target, str):
        return onnx.load(target)
    return onnx.load_from_string(target.getvalue())


def fix_output_dims(proto, shapes: Sequence[Sequence[int]],
                    dynamic_axes: Dict[str, Dict[int, str]]) -> None:
    """Write the outputs' shapes into the graph's outputs: a fixed dim as its size, a dynamic
    one by its axis name (tracing leaves generated names where a shape came from an operator,
    e.g. the image embedding's)."""
    for value, shape in zip(proto.graph.output, shapes):
        axes = dynamic_axes.get(value.name, {})
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise RuntimeError(f'output {value.name} has {len(dims)} dims, expected {shape}')
        for i, size in enumerate(shape):
            if i in axes:
                dims[i].dim_param = axes[i]
            else:
                dims[i].dim_value = int(size)


def quantize(fp32_path: str, out_path: str, weight_type: str = INT8_WEIGHT_TYPE) -> None:
    """ONNX Runtime's dynamic int8 quantisation of the graph's linear layers (MatMul nodes
    with constant weights); activations are quantised at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    import logging
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # its "consider pre-processing" notice on every call
    try:
        quantize_dynamic(fp32_path, out_path, op_types_to_quantize=['MatMul'],
                         weight_type=getattr(QuantType, weight_type), per_channel=False,
                         reduce_range=False, use_external_data_format=True,
                         extra_options=dict(MatMulConstBOnly=True))
    finally:
        logger.setLevel(level)


# ---------------------------------------------------------------------- settings
def tokenizer_settings(step, pad_id: int, max_text_length: Optional[int],
                       out_dir: str) -> dict:
    """Copy the tokenizer of the pipeline's ``TokenizeText`` ``step`` to ``out_dir/tokenizer``
    and describe it for :class:`~mmevf.deploy.onnx_predictor.Tokenizer`, which is checked to
    give the pipeline's ids on :data:`TOKENIZER_CHECK`."""
    tokenizer, folder = step.tokenizer, str(step.tokenizer_path)
    target = osp.join(out_dir, 'tokenizer')
    if osp.isdir(target):
        shutil.rmtree(target)
    os.makedirs(target)
    for name in TOKENIZER_FILES:
        if osp.isfile(osp.join(folder, name)):
            shutil.copy2(osp.join(folder, name), osp.join(target, name))
    settings = dict(folder='tokenizer', max_length=step.max_length, pad_id=int(pad_id),
                    max_text_length=max_text_length)
    if 'XLMRoberta' in type(tokenizer).__name__ and osp.isfile(
            osp.join(folder, 'sentencepiece.bpe.model')):
        # fairseq's layout: <s> <pad> </s> <unk> first, sentencepiece's pieces shifted by one
        settings.update(kind='xlmr-sentencepiece', model_file='sentencepiece.bpe.model',
                        bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id,
                        unk_id=tokenizer.unk_token_id, offset=1)
    else:
        tokenizer.backend_tokenizer.save(osp.join(target, 'tokenizer.json'))
        settings.update(kind='tokenizers-json')
    standalone = Tokenizer(target, settings)
    for text in TOKENIZER_CHECK:
        expected = step.transform(dict(text=[text]))['text_ids'][0]
        got = standalone.encode(text)
        if got != expected:
            raise ValueError(f'the exported tokenizer ({settings["kind"]}) disagrees with '
                             f'{folder}\'s on {text!r}: {got} vs {expected}')
    return settings


def deploy_settings(inferencer) -> dict:
    """``deploy.json``'s model-dependent part, from the inferencer's model and pipeline."""
    model = inferencer.model
    resize, tokenize = _step(inferencer.pipeline, 'SAMResize'), \
        _step(inferencer.pipeline, 'TokenizeText')
    if resize is None or tokenize is None:
        raise ValueError('the test pipeline needs SAMResize and TokenizeText for an export')
    side = int(model.image_encoder.img_size)
    if int(resize.sam_size) != side:
        raise ValueError(f'SAMResize(sam_size={resize.sam_size}) disagrees with the image '
                         f'encoder\'s img_size {side}')
    with_image = bool(getattr(model, 'mm_encoder_image', True))
    if with_image and resize.mm_size is None:
        raise ValueError('the model reads a multimodal image view but SAMResize makes none '
                         '(mm_size=None)')
    pre = model.data_preprocessor
    head = model.prompt_head
    as_list = lambda t: [float(v) for v in t.flatten().tolist()]  # noqa: E731
    visualizer = inferencer.cfg.get('visualizer')
    try:
        visualizer = json.loads(json.dumps(
            visualizer.to_dict() if hasattr(visualizer, 'to_dict') else visualizer))
    except (TypeError, ValueError):
        visualizer = None
    return dict(
        image=dict(sam_size=side, mm_size=int(resize.mm_size) if with_image else None,
                   resize='longest side to sam_size, Pillow bilinear (ResizeLongestSide)',
                   mm_resize='square mm_size, torch bicubic without antialias',
                   mean=as_list(pre.mean), std=as_list(pre.std),
                   bgr_to_rgb=bool(pre.bgr_to_rgb), mm_mean=as_list(pre.mm_mean),
                   mm_std=as_list(pre.mm_std), pad='zeros bottom / right to sam_size'),
        embedding=dict(channels=int(head.embed_dim), size=int(head.image_embedding_size)),
        mask_threshold=float(model.mask_threshold),
        no_target_threshold=None if getattr(model, 'no_target_head', None) is None else
        float(model.no_target_threshold),
        visualizer=visualizer,
        _tokenize=tokenize, _pad_id=int(pre.pad_token_id),
        _max_text_length=getattr(getattr(model, 'mm_encoder', None), 'max_text_length', None))


def example_inputs(model: nn.Module, settings: dict, tokenize) -> dict:
    """Inputs to trace each graph with: the text batch has padding (the encoder's masking
    branch is what the graph must hold), the decoder two prompts with points and a box."""
    side, view = settings['image']['sam_size'], settings['image']['mm_size']
    generator = torch.Generator().manual_seed(0)
    ids = tokenize.transform(dict(text=['the red circle left of the blue square', 'a']))[
        'text_ids']
    length = max(len(row) for row in ids)
    text_ids = torch.full((len(ids), length), settings['_pad_id'], dtype=torch.long)
    for i, row in enumerate(ids):
        text_ids[i, :len(row)] = torch.tensor(row)
    padding = torch.arange(length)[None] >= torch.tensor([len(r) for r in ids])[:, None]
    channels, grid = settings['embedding']['channels'], settings['embedding']['size']
    text = (text_ids, padding)
    if view is not None:
        text = (torch.randn(1, 3, view, view, generator=generator), ) + text
    return dict(
        image=(torch.randn(1, 3, side, side, generator=generator), ),
        text=text,
        decoder=(torch.randn(1, channels, grid, grid, generator=generator),
                 torch.randn(2, 1, channels, generator=generator),
                 torch.rand(2, 3, 2, generator=generator) * side,
                 torch.tensor([[1., 0., -1.], [1., 2., 3.]]),
                 torch.tensor([side * 0.75 + 3, side * 1.0 + 5])))


# ---------------------------------------------------------------------- the export
def export_onnx(inferencer, out_dir: str, opset: int = DEFAULT_OPSET, int8: bool = False,
                int8_weight_type: str = INT8_WEIGHT_TYPE, checkpoint: Optional[str] = None,
                external_data_threshold: int = EXTERNAL_DATA_THRESHOLD,
                log: Optional[Callable[[str], None]] = print) -> dict:
    """Export the model of a PyTorch ``TextSegInferencer`` (its weights, test pipeline and
    tokenizer) to ``out_dir``; returns what ``deploy.json`` holds.

    Args:
        inferencer: a ``TextSegInferencer`` (backend ``'pytorch'``) of an EVF-SAM config.
        out_dir: the export folder (created; files of an earlier export are replaced).
        opset: ONNX opset (17, as segment_anything's export).
        int8: also write the dynamically quantised encoders (``*_int8.onnx``).
        int8_weight_type: ``'QInt8'`` or ``'QUInt8'`` weights for them.
        checkpoint: the weights' file, recorded in ``deploy.json``.
        external_data_threshold: weight bytes above which a graph's weights go to
            ``<graph>.onnx.data`` (default: ONNX's 2 GB protobuf limit).
        log: progress messages (``None``: silent).
    """
    import onnx
    say = log or (lambda message: None)
    model = inferencer.model
    check_exportable(model)
    model.eval()
    settings = deploy_settings(inferencer)
    config_path = getattr(inferencer, 'config_path', None) or getattr(inferencer.cfg,
                                                                      'filename', None)
    config = osp.splitext(osp.basename(config_path))[0] if config_path else 'unknown'
    os.makedirs(out_dir, exist_ok=True)
    tokenize = settings.pop('_tokenize')
    pad_id, max_text_length = settings.pop('_pad_id'), settings.pop('_max_text_length')
    tokenizer = tokenizer_settings(tokenize, pad_id, max_text_length, out_dir)
    examples = example_inputs(model, dict(settings, _pad_id=pad_id), tokenize)

    text_graph = TextEncoderGraph(model)
    text_axes = {name: {0: 'num_texts', 1: 'text_length'}
                 for name in ('text_ids', 'text_padding_mask')}
    text_axes['prompt_tokens'] = {0: 'num_texts'}
    decoder_graph = MaskDecoderGraph(model)
    decoder_axes = dict(prompt_tokens={0: 'num_prompts', 1: 'num_text_tokens'},
                        point_coords={0: 'num_prompts', 1: 'num_points'},
                        point_labels={0: 'num_prompts', 1: 'num_points'},
                        masks={0: 'num_prompts', 2: 'height', 3: 'width'},
                        iou_predictions={0: 'num_prompts'})
    if decoder_graph.no_target_head is not None:
        decoder_axes['no_target_logits'] = {0: 'num_prompts'}
    with torch.no_grad(), reference_path(model):
        tokens = text_graph(*examples['text'])
    # the outputs' shapes for the graphs' signatures (the image encoder is not run twice)
    channels, grid = settings['embedding']['channels'], settings['embedding']['size']
    num_prompts = examples['decoder'][1].shape[0]
    decoder_shapes = [(num_prompts, 1, 0, 0), (num_prompts, 1), (num_prompts, )]
    jobs = (('image_encoder', ImageEncoderGraph(model), examples['image'], {},
             [(1, channels, grid, grid)]),
            ('text_encoder', text_graph, examples['text'], text_axes, [tuple(tokens.shape)]),
            ('mask_decoder', decoder_graph, examples['decoder'], decoder_axes,
             decoder_shapes[:len(decoder_graph.output_names)]))
    graphs, timings = {}, {}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp, torch.no_grad(), \
            reference_path(model):
        for name, module, args, axes, shapes in jobs:
            start = time.perf_counter()
            proto = trace_to_onnx(module, args, tmp, opset, axes)
            fix_output_dims(proto, shapes, axes)
            graphs[name] = save_graph(proto, osp.join(out_dir, graph_file(name)), name, config,
                                      external_data_threshold)
            del proto
            timings[name] = time.perf_counter() - start
            say(f'{graph_file(name)}: {graphs[name]["weight_bytes"] / 2**20:.1f} MiB, '
                f'{timings[name]:.1f} s')
        if int8:
            for name in onnx_predictor.INT8_GRAPHS:
                start = time.perf_counter()
                quantized = osp.join(tmp, graph_file(name, 'int8'))
                quantize(osp.join(out_dir, graph_file(name)), quantized, int8_weight_type)
                key = graph_key(name, 'int8')
                graphs[key] = save_graph(onnx.load(quantized),
                                         osp.join(out_dir, graph_file(name, 'int8')), key,
                                         config, external_data_threshold)
                graphs[key]['weight_type'] = int8_weight_type
                timings[key] = time.perf_counter() - start
                say(f'{graph_file(name, "int8")}: {graphs[key]["weight_bytes"] / 2**20:.1f} '
                    f'MiB ({int8_weight_type} weights), {timings[key]:.1f} s')
    for name in ('image_encoder', 'text_encoder'):  # stale int8 graphs of an earlier export
        stale = osp.join(out_dir, graph_file(name, 'int8'))
        if not int8:
            for path in (stale, f'{stale}.data'):
                if osp.exists(path):
                    os.remove(path)
    deploy = dict(
        format=FORMAT, format_version=FORMAT_VERSION,
        model=dict(config=config, config_file=osp.basename(config_path or ''),
                   type=type(model).__name__,
                   checkpoint=None if checkpoint is None else osp.basename(str(checkpoint)),
                   parameters=sum(p.numel() for p in model.parameters())),
        export=dict(id=uuid.uuid4().hex, exporter='torch.onnx.export (TorchScript, '
                    'dynamo=False)', torch=torch.__version__, onnx=onnx.__version__,
                    opset=opset, seconds={k: round(v, 2) for k, v in timings.items()}),
        prompt=dict(dim=int(tokens.shape[-1]), tokens_per_text=int(tokens.shape[1])),
        tokenizer=tokenizer, graphs=graphs, **settings)
    with open(osp.join(out_dir, DEPLOY_FILE), 'w') as f:
        json.dump(deploy, f, indent=2)
    shutil.copyfile(onnx_predictor.__file__, osp.join(out_dir, 'predict.py'))
    say(f'written to {out_dir} ({DEPLOY_FILE}, tokenizer/, predict.py)')
    return deploy


def export_from_config(config: str, checkpoint: Optional[str], out_dir: str,
                       tokenizer: Optional[str] = None, **kwargs) -> dict:
    """:func:`export_onnx` of a config (file or name) with its checkpoint, built as
    ``TextSegInferencer`` builds it."""
    from mmevf.apis import TextSegInferencer
    inferencer = TextSegInferencer(config, weights=checkpoint, tokenizer=tokenizer,
                                   device='cpu', show_progress=False)
    return export_onnx(inferencer, out_dir, checkpoint=checkpoint, **kwargs)

