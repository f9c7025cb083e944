"""``transformers`` models inside mmevf modules: the architecture from a config or a local folder,
the weights from that folder (never from the hub).

An mmevf module wrapping a ``transformers`` model takes ``config`` (the architecture) and
``pretrained`` (a local folder saved by ``save_pretrained``: ``config.json`` and weights):

- the folder exists when the module is built: the architecture is the folder's
  ``config.json``; the keys ``config`` gives must agree with it (a config file can so document
  the architecture it expects, and a wrong folder fails at once);
- it does not (yet): the architecture is ``config``'s, with random weights. This is how the
  paper configs build, e.g. on the ``meta`` device for ``tools/analysis/count_params.py``, on a
  machine without the weights; ``init_weights`` then fails, naming the folder;
- the weights are loaded in ``init_weights`` (as mmengine's ``Pretrained``), by the model's own
  ``from_pretrained`` (it knows the naming variants of its files) and copied in strictly.
"""
import os.path as osp
from typing import Iterable, List, Optional, Type, Union

from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from .initializers import load_state_dict_checked

ConfigLike = Union[dict, PretrainedConfig, None]
_ABSENT = object()


def has_hf_config(folder: Optional[str]) -> bool:
    """Whether ``folder`` is a local ``transformers`` model folder (holds ``config.json``)."""
    return folder is not None and osp.isfile(osp.join(folder, 'config.json'))


def _config_from_dict(config_class: Type[PretrainedConfig], config: dict) -> PretrainedConfig:
    if config_class is AutoConfig:  # the model type is one of the keys
        config = dict(config)
        if 'model_type' not in config:
            raise ValueError(f'a config dict for AutoConfig needs a model_type, got {config}')
        return AutoConfig.for_model(config.pop('model_type'), **config)
    return config_class(**config)


def _disagreements(given: dict, actual: PretrainedConfig, prefix: str = '') -> List[str]:
    """``key: given vs folder`` for every key of ``given`` whose value differs from
    ``actual``'s; nested dicts are compared with sub-configs, and aliases (DistilBERT's
    ``hidden_size`` for ``dim``) are resolved by the config itself."""
    out = []
    for key, value in given.items():
        name = prefix + key
        found = getattr(actual, key, _ABSENT)
        if isinstance(value, dict) and isinstance(found, PretrainedConfig):
            out.extend(_disagreements(value, found, name + '.'))
        elif found is _ABSENT:
            out.append(f'{name}: {value!r} vs absent')
        elif (list(value) if isinstance(value, tuple) else value) != (
                list(found) if isinstance(found, tuple) else found):
            out.append(f'{name}: {value!r} vs {found!r}')
    return out


def resolve_hf_config(config_class: Type[PretrainedConfig], config: ConfigLike,
                      pretrained: Optional[str]) -> PretrainedConfig:
    """The architecture to build (see the module docstring).

    Args:
        config_class: e.g. ``CLIPConfig``; ``AutoConfig`` reads ``model_type`` from ``config``.
        config: a dict of ``config_class`` arguments, a config object, or ``None`` (the
            folder's, or ``config_class``'s defaults without a folder).
        pretrained: the local folder, or ``None``.

    Raises:
        FileNotFoundError: ``config`` is ``None`` and ``pretrained`` names no folder.
        ValueError: a key of a ``config`` dict disagrees with the folder's ``config.json``.
    """
    if not has_hf_config(pretrained):
        if config is None and pretrained is not None:
            raise FileNotFoundError(
                f'{pretrained!r} holds no config.json: put the transformers model folder there '
                f'(weights are never fetched from the hub), or give `config` to build the '
                f'architecture without it')
        if isinstance(config, PretrainedConfig):
            return config
        return _config_from_dict(config_class, config or {})
    found = config_class.from_pretrained(pretrained, local_files_only=True)
    if isinstance(config, dict):
        differ = _disagreements(config, found)
        if differ:
            raise ValueError(f'config disagrees with {osp.join(pretrained, "config.json")} '
                             f'(given vs folder):\n  ' + '\n  '.join(differ))
    return found


def load_hf_weights(module: PreTrainedModel, folder: str,
                    ignore_unexpected: Iterable[str] = ()) -> None:
    """Fill ``module`` with the weights of the local folder ``folder``, read by
    ``type(module).from_pretrained``; a missing, unexpected (beyond ``ignore_unexpected``, e.g.
    a pooler the module leaves out) or mis-shaped key raises an error naming the folder."""
    if not has_hf_config(folder):
        raise FileNotFoundError(
            f'{folder!r} is not a transformers model folder (no config.json): put the model '
            f'saved by save_pretrained there (config.json and model.safetensors); weights are '
            f'never fetched from the hub')
    loaded = type(module).from_pretrained(folder, local_files_only=True)
    load_state_dict_checked(module, loaded.state_dict(), source=folder,
                            ignore_unexpected=ignore_unexpected)
