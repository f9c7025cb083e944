"""mmpretrain 1.2 under transformers 5: ``import mmpretrain.models`` fails.

mmpretrain <= 1.2 imports its multimodal models (BLIP, BLIP-2, LLaVA, ...) whenever transformers
and pycocotools are installed (``mmpretrain.utils.dependency.WITH_MULTIMODAL``). Their BERT
module imports helpers that transformers 5 removed from ``transformers.modeling_utils``
(``apply_chunking_to_forward``, ``prune_linear_layer``, ...); its fallback leaves
``PreTrainedModel = None`` and ``class BertPreTrainedModel(PreTrainedModel)`` raises "NoneType
takes no arguments", so no mmpretrain model at all can be built (``mmpretrain.ViTSAM``,
``mmpretrain.ConvNeXt``, ...). Switching the flag off before ``mmpretrain.models`` is imported
gives mmpretrain's own behaviour without the multimodal extras: their names stay registered as
placeholders that raise when built; backbones, necks and heads are untouched.

``import mmpretrain`` alone imports ``mmpretrain.apis`` / ``utils`` / ``registry`` but not
``mmpretrain.models`` (mmengine imports it lazily, at the first lookup of an ``mmpretrain.*``
type), so the fix applied by ``import mmevf`` works whether mmpretrain was imported before or
after mmevf, and also after a failed ``import mmpretrain.models`` (see
:func:`_forget_failed_import`).
"""
import importlib.metadata
import sys

from mmengine.utils import digit_version

# The multimodal package and its submodules, whose registrations a failed import leaves behind.
MULTIMODAL_PACKAGE = 'mmpretrain.models.multimodal'


def needs_mmpretrain_fix() -> bool:
    """mmpretrain <= 1.2.x (imports its multimodal models whenever transformers is installed)
    with transformers >= 5 (which they cannot import under). Read from the installed
    distributions' metadata: nothing is imported."""
    try:
        mmpretrain_version = importlib.metadata.version('mmpretrain')
        transformers_version = importlib.metadata.version('transformers')
    except importlib.metadata.PackageNotFoundError:
        return False
    return (digit_version(mmpretrain_version) < digit_version('1.3.0')
            and digit_version(transformers_version) >= digit_version('5.0.0'))


def fix_mmpretrain_import() -> bool:
    """Where :func:`needs_mmpretrain_fix`, make ``import mmpretrain.models`` skip the multimodal
    models. Idempotent; returns whether anything was changed. Called by ``import mmevf``."""
    if not needs_mmpretrain_fix():
        return False
    try:  # imports the ``mmpretrain`` package (apis, utils, registry), not its models
        from mmpretrain.utils import dependency
    except ImportError:  # a broken install: mmpretrain reports it when it is used
        return False
    if not dependency.WITH_MULTIMODAL:  # applied already, or mmpretrain found no transformers
        return False
    dependency.WITH_MULTIMODAL = False
    _forget_failed_import()
    return True


def _forget_failed_import() -> None:
    """Undo what an earlier, failed ``import mmpretrain.models`` left behind.

    Python drops the modules whose import raised, but keeps the multimodal submodules that
    were imported before the failure (``blip.blip_caption``, ...) and their registry entries;
    the next import would then stop at registering its placeholders under the same names
    ("BlipCaption is already registered"). Those modules and entries are removed, so the next
    import starts over with the multimodal models switched off."""
    if 'mmpretrain.models' in sys.modules:  # imported successfully: nothing to undo
        return
    stale = [name for name in sys.modules if name.startswith(MULTIMODAL_PACKAGE + '.')]
    if not stale:
        return
    from mmengine.registry import Registry
    from mmpretrain import registry
    for reg in vars(registry).values():
        if isinstance(reg, Registry):
            for key, obj in list(reg.module_dict.items()):
                if getattr(obj, '__module__', '').startswith(MULTIMODAL_PACKAGE + '.'):
                    del reg.module_dict[key]
    for name in stale:
        del sys.modules[name]
