"""Official EVF-SAM checkpoint folders (Hugging Face layout) -> mmevf ``EVFSAM`` weights.

An official folder holds ``config.json``, the weights (``pytorch_model.bin``,
``model.safetensors`` or shards listed in ``*.index.json``) and the XLM-R tokenizer files.
Keys are ``visual_model.*`` (SAM), ``mm_extractor.beit3.*`` (BEiT-3) and
``text_hidden_fcs.0.*`` (projector).
"""
import json
import os.path as osp
from typing import Dict, List, Tuple

from .weights import StateDict, read_state_dict

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
_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
# Keys that only other EVF variants have (SAM-2, EfficientSAM): not convertible to EVFSAM.
_OTHER_VARIANTS = {
    'visual_model.sam_mask_decoder.': 'EVF-SAM2 (SAM-2)',
    'visual_model.memory_attention.': 'EVF-SAM2 (SAM-2)',
    'visual_model.prompt_encoder.invalid_points.': 'EVF-Effi-SAM (EfficientSAM)',
}


def weight_files(folder: str) -> List[str]:
    """The weight file(s) of a Hugging Face checkpoint folder, shards in order."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'EVF-SAM checkpoint folder {folder} does not exist')
    for name in _WEIGHT_FILES:
        index = osp.join(folder, name + '.index.json')
        if osp.isfile(index):
            with open(index) as f:
                shards = sorted(set(json.load(f)['weight_map'].values()))
            return [osp.join(folder, shard) for shard in shards]
        if osp.isfile(osp.join(folder, name)):
            return [osp.join(folder, name)]
    raise FileNotFoundError(f'{folder} holds none of {_WEIGHT_FILES} (or their .index.json)')


def read_evf_sam_folder(folder: str) -> Tuple[StateDict, dict]:
    """Read an official folder: (official state dict, ``config.json`` contents)."""
    config_file = osp.join(folder, 'config.json')
    if not osp.isfile(config_file):
        raise FileNotFoundError(f'{config_file} not found: is {folder} an EVF-SAM checkpoint?')
    with open(config_file) as f:
        config = json.load(f)
    state: StateDict = {}
    for path in weight_files(folder):
        state.update(read_state_dict(path))
    return state, config


def convert_evf_sam_state_dict(state: StateDict, source: str = 'checkpoint') -> StateDict:
    """Rename official EVF-SAM keys to ``EVFSAM`` keys; unknown keys are an error."""
    for prefix, variant in _OTHER_VARIANTS.items():
        if any(k.startswith(prefix) for k in state):
            raise ValueError(f'{source} is an {variant} checkpoint; mmevf converts EVF-SAM '
                             f'(SAM-1) checkpoints only')
    converted: Dict[str, object] = {}
    unknown = []
    for key, value in state.items():
        for old, new in EVF_SAM_KEY_MAP:
            if key.startswith(old):
                converted[new + key[len(old):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f'{source} has keys outside the EVF-SAM layout '
                         f'({len(unknown)}): {", ".join(unknown[:10])}')
    return converted


def describe_evf_config(config: dict) -> Dict[str, str]:
    """The architecture an official ``config.json`` describes, in mmevf terms."""
    sam = {'huge': 'vit_h', 'large': 'vit_l', 'base': 'vit_b'}.get(config.get('sam_scale', 'huge'))
    return dict(
        image_encoder=sam or f'unsupported sam_scale {config.get("sam_scale")!r}',
        mm_encoder=config.get('mm_extractor_scale', 'large'),
        hidden_size=str(config.get('hidden_size')),
        out_dim=str(config.get('out_dim', 256)))
