"""Foreign checkpoint layouts -> mmevf keys, one place per layout.

A layout reads an official file or folder and names its tensors as mmevf's segmentors do
(``image_encoder.*``, ``prompt_head.*``, ``mm_encoder.*``, ``projector.*``, ``text_encoder.*``).
``init_cfg=dict(type='StrictPretrained', checkpoint=..., layout=..., prefix=...)`` and the
converters in ``tools/model_converters/`` both read through :data:`LAYOUTS`:

- ``'sam'``: SAM's ``sam_vit_{b,l,h}_*.pth`` (``image_encoder.*``, ``prompt_encoder.*``,
  ``mask_decoder.*``);
- ``'beit3'``: an official BEiT-3 file (unilm ``{'model': ...}`` with ``beit3.*`` keys, or the
  bare encoder); pre-training / task heads are left out;
- ``'evf_sam'``: an official EVF-SAM folder (Hugging Face: ``config.json``, weights or shards,
  XLM-R tokenizer files; keys ``visual_model.*``, ``mm_extractor.beit3.*``,
  ``text_hidden_fcs.0.*``);
- ``'bert'``: a local transformers BERT folder (``config.json`` + weights).

SAM's image encoder can also be mmpretrain's ``ViTSAM`` (the same network under other names,
inside a ``BackboneImageEncoder``): :func:`sam_vit_to_vitsam` renames SAM's image-encoder keys
for it (applied at load time by ``BackboneImageEncoder.adapt_state_dict``, so the ``'sam'``
layout loads into it unchanged) and :func:`mmevf_to_sam` renames them back.
"""
import json
import os.path as osp
from typing import Callable, Dict, Optional, Tuple

from mmengine.logging import print_log

from .io import StateDict, read_state_dict

# ---------------------------------------------------------------------------------- SAM
# SAM key prefix -> mmevf key prefix (EVFSAM, DITSAM and SAMPretrainer share these names)
SAM_KEY_MAP: Tuple[Tuple[str, str], ...] = (
    ('image_encoder.', 'image_encoder.'),
    ('prompt_encoder.', 'prompt_head.prompt_encoder.'),
    ('mask_decoder.', 'prompt_head.mask_decoder.'),
)


def rename_prefixes(state: StateDict, key_map: Tuple[Tuple[str, str], ...], source: str,
                    layout: str) -> StateDict:
    """Rename keys by their first matching prefix; a key matching none is an error."""
    converted: StateDict = {}
    unknown = []
    for key, value in state.items():
        for old, new in key_map:
            if key.startswith(old):
                converted[new + key[len(old):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f'{source} has keys outside the {layout} layout '
                         f'({len(unknown)}): {", ".join(unknown[:10])}')
    return converted


def read_sam(path: str) -> StateDict:
    """An official SAM file with mmevf's keys."""
    return rename_prefixes(read_state_dict(path), SAM_KEY_MAP, path, 'SAM')


def mmevf_to_sam(path: str) -> StateDict:
    """The SAM part of an mmevf checkpoint in SAM's own layout (the inverse of ``'sam'``);
    an image encoder that is a ``BackboneImageEncoder`` around ``ViTSAM`` is renamed back to
    SAM's ``ImageEncoderViT`` keys.

    Raises:
        KeyError: naming the file and the missing part, when it lacks one of the three.
        ValueError: when the image encoder is another backbone (not SAM's ViT).
    """
    state = read_state_dict(path)
    converted: StateDict = {}
    for sam_prefix, mmevf_prefix in SAM_KEY_MAP:
        part = {k[len(mmevf_prefix):]: v for k, v in state.items() if k.startswith(mmevf_prefix)}
        if not part:
            raise KeyError(f'{path} holds no {mmevf_prefix}* weights: not an mmevf SAM-based '
                           f'checkpoint')
        if sam_prefix == 'image_encoder.' and any(k.startswith('backbone.') for k in part):
            part = _backbone_encoder_to_sam(part, path)
        converted.update({sam_prefix + k: v for k, v in part.items()})
    return converted


# ---------------------------------------------------------------------------------- ViTSAM
# segment_anything's ImageEncoderViT -> mmpretrain's ViTSAM: the same layers (patch embedding,
# (1, H, W, C) position table, blocks with windowed / global attention and decomposed rel-pos,
# the conv + LayerNorm2d neck), other names. Keys relative to the image encoder.
SAM_VIT_TO_VITSAM: Tuple[Tuple[str, str], ...] = (
    ('patch_embed.proj.', 'patch_embed.projection.'),
    ('pos_embed', 'pos_embed'),
    ('neck.', 'channel_reduction.'),
)
# ... and within block / layer N (``blocks.N.`` -> ``layers.N.``); ``attn.*`` (qkv, proj,
# rel_pos_h, rel_pos_w) keeps its names, the MLP is mmcv's FFN.
SAM_VIT_BLOCK_TO_VITSAM: Tuple[Tuple[str, str], ...] = (
    ('norm1.', 'ln1.'),
    ('attn.', 'attn.'),
    ('norm2.', 'ln2.'),
    ('mlp.lin1.', 'ffn.layers.0.0.'),
    ('mlp.lin2.', 'ffn.layers.1.'),
)
SAM_VIT_BLOCKS, VITSAM_LAYERS = 'blocks.', 'layers.'


def _rename_vit_key(key: str, key_map: Tuple[Tuple[str, str], ...],
                    block_map: Tuple[Tuple[str, str], ...], blocks: str,
                    new_blocks: str) -> Optional[str]:
    """``key`` renamed by the first matching prefix (within a block: ``blocks.N.`` first);
    ``None`` if none matches."""
    for old, new in key_map:
        if key.startswith(old):
            return new + key[len(old):]
    if key.startswith(blocks):
        index, _, rest = key[len(blocks):].partition('.')
        for old, new in block_map:
            if index.isdigit() and rest.startswith(old):
                return f'{new_blocks}{index}.{new}{rest[len(old):]}'
    return None


def convert_sam_vit(state: StateDict, to_vitsam: bool = True,
                    source: str = 'state dict') -> StateDict:
    """SAM ``ImageEncoderViT`` keys -> ``ViTSAM`` keys (or back, ``to_vitsam=False``), both
    relative to the encoder; a key of neither network is an error naming ``source``."""
    if to_vitsam:
        args = (SAM_VIT_TO_VITSAM, SAM_VIT_BLOCK_TO_VITSAM, SAM_VIT_BLOCKS, VITSAM_LAYERS)
    else:
        args = (tuple((new, old) for old, new in SAM_VIT_TO_VITSAM),
                tuple((new, old) for old, new in SAM_VIT_BLOCK_TO_VITSAM),
                VITSAM_LAYERS, SAM_VIT_BLOCKS)
    converted: StateDict = {}
    unknown = []
    for key, value in state.items():
        new_key = _rename_vit_key(key, *args)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value
    if unknown:
        network = 'SAM image encoder' if to_vitsam else 'ViTSAM'
        raise ValueError(f'{source}: keys that are not those of a {network} ({len(unknown)}): '
                         f'{", ".join(unknown[:10])}')
    return converted


def sam_vit_to_vitsam(state: StateDict, source: str = 'state dict') -> StateDict:
    """SAM's image-encoder keys (without ``image_encoder.``) as ``ViTSAM``'s."""
    return convert_sam_vit(state, to_vitsam=True, source=source)


def _backbone_encoder_to_sam(part: StateDict, source: str) -> StateDict:
    """A ``BackboneImageEncoder``'s keys (relative to it) as SAM's image encoder's: only a
    ``ViTSAM`` backbone with its own neck (no wrapper neck) is SAM's network."""
    extra = sorted({k.split('.')[0] for k in part if not k.startswith('backbone.')})
    if extra:
        raise ValueError(f'{source}: the image encoder has modules besides its backbone '
                         f'({extra}); it is not SAM\'s ViT and has no SAM layout')
    backbone = {k[len('backbone.'):]: v for k, v in part.items()}
    return convert_sam_vit(backbone, to_vitsam=False, source=f'{source} [image_encoder.backbone.*]')


# ---------------------------------------------------------------------------------- BEiT-3
BEIT3_MODULES = ('text_embed.', 'vision_embed.', 'encoder.')


def read_beit3(path: str) -> StateDict:
    """An official BEiT-3 file as ``mm_encoder.*``; keys outside the encoder (the file's
    pre-training / task heads, e.g. ``mlm_head``, ``logit_scale``) are reported and left out."""
    state = read_state_dict(path)
    state = {k[len('beit3.'):] if k.startswith('beit3.') else k: v for k, v in state.items()}
    heads = sorted({k.split('.')[0] for k in state if not k.startswith(BEIT3_MODULES)})
    if heads:
        print_log(f'{path}: leaving out the keys outside the BEiT-3 encoder: {heads}',
                  logger='current')
    return {f'mm_encoder.{k}': v for k, v in state.items() if k.startswith(BEIT3_MODULES)}


# ---------------------------------------------------------------------------------- EVF-SAM
# official prefix -> mmevf EVFSAM prefix
EVF_SAM_KEY_MAP: Tuple[Tuple[str, str], ...] = (
    ('visual_model.image_encoder.', 'image_encoder.'),
    ('visual_model.prompt_encoder.', 'prompt_head.prompt_encoder.'),
    ('visual_model.mask_decoder.', 'prompt_head.mask_decoder.'),
    ('mm_extractor.beit3.', 'mm_encoder.'),
    ('text_hidden_fcs.0.', 'projector.mlp.'),
)
TOKENIZER_FILES = ('sentencepiece.bpe.model', 'tokenizer_config.json', 'special_tokens_map.json',
                   'tokenizer.json', 'added_tokens.json')
# Keys that only other EVF variants have (SAM-2, EfficientSAM): not convertible to EVFSAM.
_OTHER_VARIANTS = {
    'visual_model.sam_mask_decoder.': 'EVF-SAM2 (SAM-2)',
    'visual_model.memory_attention.': 'EVF-SAM2 (SAM-2)',
    'visual_model.prompt_encoder.invalid_points.': 'EVF-Effi-SAM (EfficientSAM)',
}


def read_evf_sam_folder(folder: str) -> Tuple[StateDict, dict]:
    """Read an official folder: (official state dict, ``config.json`` contents)."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'EVF-SAM checkpoint folder {folder} does not exist')
    config_file = osp.join(folder, 'config.json')
    if not osp.isfile(config_file):
        raise FileNotFoundError(f'{config_file} not found: is {folder} an EVF-SAM checkpoint?')
    with open(config_file) as f:
        config = json.load(f)
    return read_state_dict(folder), config


def convert_evf_sam_state_dict(state: StateDict, source: str = 'checkpoint') -> StateDict:
    """Rename official EVF-SAM keys to ``EVFSAM`` keys; unknown keys are an error."""
    for prefix, variant in _OTHER_VARIANTS.items():
        if any(k.startswith(prefix) for k in state):
            raise ValueError(f'{source} is an {variant} checkpoint; mmevf converts EVF-SAM '
                             f'(SAM-1) checkpoints only')
    return rename_prefixes(state, EVF_SAM_KEY_MAP, source, 'EVF-SAM')


def read_evf_sam(folder: str) -> StateDict:
    """An official EVF-SAM folder with ``EVFSAM``'s keys."""
    return convert_evf_sam_state_dict(read_evf_sam_folder(folder)[0], source=folder)


def describe_evf_config(config: dict) -> Dict[str, str]:
    """The architecture an official ``config.json`` describes, in mmevf terms."""
    sam = {'huge': 'vit_h', 'large': 'vit_l', 'base': 'vit_b'}.get(config.get('sam_scale', 'huge'))
    return dict(
        image_encoder=sam or f'unsupported sam_scale {config.get("sam_scale")!r}',
        mm_encoder=config.get('mm_extractor_scale', 'large'),
        hidden_size=str(config.get('hidden_size')),
        out_dim=str(config.get('out_dim', 256)))


# ---------------------------------------------------------------------------------- BERT
def read_bert_folder(folder: str) -> StateDict:
    """A local transformers BERT folder as ``text_encoder.bert.*`` (``BertTextEncoder``).

    transformers reads it (``BertModel.from_pretrained``: it knows the naming variants of BERT
    files, e.g. a ``bert.`` prefix or LayerNorm ``gamma`` / ``beta``); never from the hub."""
    if not osp.isfile(osp.join(folder, 'config.json')):
        raise FileNotFoundError(
            f'BERT folder {folder!r} has no config.json: put a transformers BERT (e.g. '
            f'bert-base-uncased: config.json, model.safetensors, vocab.txt) there; weights '
            f'are never fetched from the hub at run time')
    from transformers import BertModel
    loaded = BertModel.from_pretrained(folder, local_files_only=True)
    return {f'text_encoder.bert.{k}': v for k, v in loaded.state_dict().items()}


def read_mmevf(path: str) -> StateDict:
    """An mmevf / MMEngine checkpoint or a plain state dict, keys as they are."""
    return read_state_dict(path)


LAYOUTS: Dict[str, Callable[[str], StateDict]] = {
    'mmevf': read_mmevf,
    'sam': read_sam,
    'beit3': read_beit3,
    'evf_sam': read_evf_sam,
    'bert': read_bert_folder,
}


def read_layout(path: str, layout: str = 'mmevf') -> StateDict:
    """The tensors of ``path`` (a file or folder in ``layout``) under mmevf's key names."""
    if layout not in LAYOUTS:
        raise ValueError(f'unknown checkpoint layout {layout!r}; choose from {sorted(LAYOUTS)}')
    return LAYOUTS[layout](path)
