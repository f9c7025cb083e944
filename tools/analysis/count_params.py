"""Print the total and trainable parameter counts of a config's model.

``python tools/analysis/count_params.py configs/evf_sam/evf-beit3l_sam-h_refcoco.py``

The model's parameters are built on the ``meta`` device (no memory, no weights loaded), so
paper-scale models are counted in seconds.
"""
import argparse
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

import torch
import torch.nn as nn
from mmengine.analysis import parameter_count
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from mmevf.registry import MODELS


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Modules built here get their parameters on the ``meta`` device; every other tensor stays
    real. A ``meta`` default device would fail for backbones that read values while they are
    built (mmpretrain's ConvNeXt / Swin: their drop-path schedule, ``linspace(...).item()``)."""
    register_parameter = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: Optional[nn.Parameter]) -> None:
        if param is not None and param.device.type != 'meta':
            param = type(param)(param.to('meta'), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    # a process in deterministic mode (e.g. after a Runner with `deterministic=True`) fills
    # every new tensor with NaN: ~10x the build time of a paper-scale model
    fill = torch.utils.deterministic.fill_uninitialized_memory
    nn.Module.register_parameter = register_on_meta
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter
        torch.utils.deterministic.fill_uninitialized_memory = fill


def count(config: str, cfg_options: Optional[dict] = None) -> dict:
    """``{'total': n, 'trainable': n, 'modules': {child name: (total, trainable)}}``."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmevf'))
    with parameters_on_meta():
        model = MODELS.build(cfg.model)
    # mmengine counts every module prefix ('' = the model); the top-level names, in the order
    # of named_parameters(), are the children (or the model's own parameters)
    totals = parameter_count(model)
    # mmengine has no trainable-only count: the same prefixes over requires_grad parameters
    trainable: Dict[str, int] = dict.fromkeys(totals, 0)
    for name, param in model.named_parameters():
        if param.requires_grad:
            trainable[name.split('.')[0]] += param.numel()
    modules = {k: (v, trainable[k]) for k, v in totals.items() if k and '.' not in k}
    return dict(
        total=totals[''],
        trainable=sum(v[1] for v in modules.values()),
        modules=modules)


def main() -> None:
    parser = argparse.ArgumentParser(description='Count the parameters of a model config')
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    result = count(args.config, args.cfg_options)
    print(f'{"module":<16}{"parameters":>16}{"trainable":>16}')
    for name, (total, trainable) in result['modules'].items():
        print(f'{name:<16}{total:>16,}{trainable:>16,}')
    print(f'{"total":<16}{result["total"]:>16,}{result["trainable"]:>16,}')
    print(f'total: {result["total"] / 1e6:.1f}M ({result["total"] / 1e9:.2f}B), '
          f'trainable: {result["trainable"] / 1e6:.1f}M')


if __name__ == '__main__':
    main()
