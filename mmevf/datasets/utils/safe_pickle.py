"""Reading the refer toolkit's ``refs(*).p`` pickles without letting them run code."""
import pickle
from typing import Any

# A refs file holds lists / dicts of strings and numbers; these are the only globals that
# containers and scalars may need when pickled (sets are rebuilt by calling `set`).
_SAFE_GLOBALS = {
    ('builtins', name)
    for name in ('set', 'frozenset', 'list', 'dict', 'tuple', 'str', 'bytes', 'int', 'float',
                 'complex', 'bool', 'bytearray')
} | {('__builtin__', 'set'), ('__builtin__', 'frozenset'), ('__builtin__', 'unicode'),
     ('collections', 'OrderedDict')}


class _ContainersOnlyUnpickler(pickle.Unpickler):

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            if module == '__builtin__':  # pickles written by Python 2
                module = 'builtins'
                name = 'str' if name == 'unicode' else name
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'global {module}.{name} is not allowed')


def load_refs_pickle(path: str) -> Any:
    """Load a pickle that may contain only builtin containers and scalars.

    Raises:
        FileNotFoundError: naming ``path`` if it does not exist.
        ValueError: naming ``path`` if the pickle asks for anything else (code, classes).
    """
    try:
        with open(path, 'rb') as f:
            return _ContainersOnlyUnpickler(f).load()
    except FileNotFoundError:
        raise FileNotFoundError(f'refs file {path} does not exist') from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
            TypeError) as error:
        raise ValueError(f'{path} is not a refs pickle of plain containers and scalars '
                         f'(refused: {error})') from None
