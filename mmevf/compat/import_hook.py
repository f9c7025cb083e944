"""The start-up hook installed with mmevf: mmpretrain's models import in every interpreter.

Where mmevf is installed, mmpretrain 1.2 cannot import its models under transformers 5
(:mod:`mmevf.compat.mmpretrain`): ``import mmdet.models`` (mmdet's re-ID models import
mmpretrain's), mmdet's ``register_all_modules()`` and ``import mmpretrain.models`` fail with
"NoneType takes no arguments" unless ``import mmevf`` came first. ``pip install`` (also ``-e``)
therefore puts two files at the root of site-packages (``setup.py``'s ``build_py``):

- ``_mmevf_import_hook.py``, a copy of this module (standard library only);
- ``mmevf-import-hook.pth``: ``import _mmevf_import_hook; _mmevf_import_hook.install()``, run
  by ``site`` at interpreter start-up, as setuptools' ``distutils-precedence.pth``.

:func:`install` only puts a finder first in ``sys.meta_path``: nothing else is imported (no torch,
transformers or mmevf) and no file of another package is modified. The finder waits for the
first ``import mmpretrain``; once mmpretrain's ``__init__`` has run (it does not import
``mmpretrain.models``), it removes itself and runs
:func:`mmevf.compat.mmpretrain.fix_mmpretrain_import`, which switches
``mmpretrain.utils.dependency.WITH_MULTIMODAL`` off where the installed versions need it and
leaves a working mmpretrain alone. That module is loaded from the installed mmevf by its file
(``mmevf/compat/mmpretrain.py``, which imports only mmengine, already imported by mmpretrain), so
the host process does not import the ``mmevf`` package or register anything of it.

Set ``MMEVF_IMPORT_HOOK=0`` to keep the hook out of an interpreter.
"""
import os
import sys

TARGET = 'mmpretrain'
ENV_SWITCH = 'MMEVF_IMPORT_HOOK'
# name of the standalone copy of mmevf/compat/mmpretrain.py the hook loads
FIX_MODULE = '_mmevf_mmpretrain_fix'


class MmpretrainFixFinder:
    """A ``sys.meta_path`` finder that takes part in one import only, ``import mmpretrain``:
    it finds mmpretrain through the other finders and hands the import a loader that applies
    the fix after mmpretrain's own loader has run."""

    def __init__(self) -> None:
        self._searching = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET or self._searching:
            return None
        import importlib.util
        self._searching = True  # the search below must skip this finder
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._searching = False
        if spec is None or not hasattr(spec.loader, 'exec_module'):
            return spec
        spec.loader = FixingLoader(spec.loader, self)
        return spec


class FixingLoader:
    """mmpretrain's own loader, followed by the fix; the module keeps the original loader."""

    def __init__(self, loader, finder: MmpretrainFixFinder) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = self.loader
        if getattr(module, '__spec__', None) is not None:
            module.__spec__.loader = self.loader
        uninstall(self.finder)  # one import only
        self.loader.exec_module(module)
        apply_fix()

    def __getattr__(self, name):  # anything else a loader offers
        return getattr(self.loader, name)


def apply_fix() -> bool:
    """Run mmevf's ``fix_mmpretrain_import`` without importing the ``mmevf`` package; whether
    it changed anything. A failure is reported as a warning: mmpretrain's import goes on."""
    try:
        module = sys.modules.get(FIX_MODULE)
        if module is None:
            import importlib.util
            package = importlib.util.find_spec('mmevf')
            if package is None or not package.submodule_search_locations:
                return False  # mmevf was uninstalled and left this hook behind
            path = os.path.join(list(package.submodule_search_locations)[0], 'compat',
                                'mmpretrain.py')
            spec = importlib.util.spec_from_file_location(FIX_MODULE, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[FIX_MODULE] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[FIX_MODULE]
                raise
        return bool(module.fix_mmpretrain_import())
    except Exception as error:  # never break the host's import of mmpretrain
        import warnings
        warnings.warn(f'mmevf\'s import hook could not apply its mmpretrain fix: {error!r}; '
                      '`import mmevf` before mmpretrain applies it', RuntimeWarning)
        return False


def installed() -> bool:
    return any(isinstance(finder, MmpretrainFixFinder) for finder in sys.meta_path)


def install() -> bool:
    """Put the finder first in ``sys.meta_path`` unless ``MMEVF_IMPORT_HOOK=0``, mmpretrain is
    imported already, or it is there already; whether it was added."""
    if os.environ.get(ENV_SWITCH, '1') == '0' or TARGET in sys.modules or installed():
        return False
    # first, before the path finders: the finder only wraps what they find
    sys.meta_path.insert(0, MmpretrainFixFinder())
    return True


def uninstall(finder=None) -> None:
    """Remove ``finder`` (default: every hook finder) from ``sys.meta_path``."""
    for f in list(sys.meta_path):
        if f is finder or (finder is None and isinstance(f, MmpretrainFixFinder)):
            sys.meta_path.remove(f)
