"""Official EVF-SAM folders: weight-file layouts, key conversion, and clear refusals."""
import json

import pytest
import torch
from safetensors.torch import save_file

from mmevf.checkpoint.io import shard_files as weight_files
from mmevf.checkpoint.layouts import convert_evf_sam_state_dict, read_evf_sam_folder

STATE = {
    'visual_model.image_encoder.pos_embed': torch.randn(1, 4, 4, 8),
    'visual_model.prompt_encoder.no_mask_embed.weight': torch.randn(1, 8),
    'visual_model.mask_decoder.iou_token.weight': torch.randn(1, 8),
    'mm_extractor.beit3.text_embed.weight': torch.randn(10, 8),
    'text_hidden_fcs.0.0.weight': torch.randn(8, 8),
    'text_hidden_fcs.0.2.bias': torch.randn(8),
}


def make_folder(path, layout: str):
    path.mkdir()
    (path / 'config.json').write_text(json.dumps(dict(model_type='evf', hidden_size=8)))
    if layout == 'bin':
        torch.save(STATE, path / 'pytorch_model.bin')
    elif layout == 'safetensors':
        save_file(STATE, str(path / 'model.safetensors'))
    else:  # two safetensors shards and their index, as save_pretrained writes large models
        keys = sorted(STATE)
        shards = {'model-00001-of-00002.safetensors': keys[:3],
                  'model-00002-of-00002.safetensors': keys[3:]}
        for name, shard_keys in shards.items():
            save_file({k: STATE[k] for k in shard_keys}, str(path / name))
        weight_map = {k: name for name, shard_keys in shards.items() for k in shard_keys}
        (path / 'model.safetensors.index.json').write_text(json.dumps(dict(weight_map=weight_map)))
    return path


@pytest.mark.parametrize('layout', ['bin', 'safetensors', 'sharded'])
def test_layouts_convert_to_evfsam_keys(tmp_path, layout):
    state, config = read_evf_sam_folder(str(make_folder(tmp_path / layout, layout)))
    assert config['hidden_size'] == 8
    converted = convert_evf_sam_state_dict(state)
    assert sorted(converted) == sorted([
        'image_encoder.pos_embed', 'prompt_head.prompt_encoder.no_mask_embed.weight',
        'prompt_head.mask_decoder.iou_token.weight', 'mm_encoder.text_embed.weight',
        'projector.mlp.0.weight', 'projector.mlp.2.bias'])
    torch.testing.assert_close(converted['mm_encoder.text_embed.weight'],
                               STATE['mm_encoder.text_embed.weight'.replace(
                                   'mm_encoder.', 'mm_extractor.beit3.')])


def test_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing_folder'):
        weight_files(str(tmp_path / 'missing_folder'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='config.json'):
        read_evf_sam_folder(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='EVF-SAM2'):
        convert_evf_sam_state_dict({'visual_model.sam_mask_decoder.x': torch.zeros(1)}, 'ckpt')
    with pytest.raises(ValueError, match='outside the EVF-SAM layout.*lm_head.weight'):
        convert_evf_sam_state_dict(dict(STATE, **{'lm_head.weight': torch.zeros(1)}), 'ckpt')
