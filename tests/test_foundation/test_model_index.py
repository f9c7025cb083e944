"""model-index.yml and the metafiles it imports, in OpenMMLab's format, against the configs.

**Which configs ship** (the rule): every ``*.py`` under ``configs/`` and ``projects/*/configs/``,
except anything under a ``_base_`` folder and any file whose name starts with ``_`` (partial
configs to inherit, e.g. ``configs/evf_sam/mm_encoders/_clip-vit-l14.py``,
``projects/EVF-Effi-SAM/configs/_base_effi_refcoco.py``). Each shipped config is the ``Config:``
of exactly one model in a metafile that ``model-index.yml`` imports, and each ``Config:`` is a
shipped config (both directions). The metafiles parse and carry the keys OpenMMLab's
model-index uses: ``Collections`` (``Name``, ``Metadata.Training Data``, ``Paper``, ``README``)
and ``Models`` (``Name``, ``In Collection``, ``Config``, ``Metadata.Training Data``,
``Metadata.Parameters``; ``Results`` entries with ``Task``, ``Dataset``, ``Metrics`` where a
figure exists; ``Weights`` optional)."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG_ROOTS = [ROOT / 'configs', *sorted((ROOT / 'projects').glob('*/configs'))]


def shipped_configs() -> set:
    found = set()
    for top in CONFIG_ROOTS:
        for path in top.rglob('*.py'):
            rel = path.relative_to(ROOT)
            if '_base_' in rel.parts or path.name.startswith('_'):
                continue
            found.add(rel.as_posix())
    return found


def metafiles() -> list:
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    assert isinstance(index, dict) and isinstance(index.get('Import'), list), \
        'model-index.yml needs an Import list'
    return index['Import']


@pytest.fixture(scope='module')
def models() -> list:
    """(metafile, model dict) for every model of every imported metafile."""
    out = []
    for rel in metafiles():
        data = yaml.safe_load((ROOT / rel).read_text())
        out.extend((rel, model) for model in data['Models'])
    return out


def test_every_imported_metafile_exists_once():
    files = metafiles()
    assert len(files) == len(set(files)), files
    for rel in files:
        assert (ROOT / rel).is_file(), f'model-index.yml imports {rel}, which does not exist'


def test_every_metafile_next_to_configs_is_imported():
    files = set(metafiles())
    on_disk = {p.relative_to(ROOT).as_posix() for top in CONFIG_ROOTS
               for p in top.rglob('metafile.yml')}
    assert on_disk <= files, f'not imported by model-index.yml: {sorted(on_disk - files)}'


@pytest.mark.parametrize('rel', metafiles())
def test_metafile_keys(rel):
    data = yaml.safe_load((ROOT / rel).read_text())
    assert set(data) == {'Collections', 'Models'}, f'{rel}: top-level keys {sorted(data)}'
    collections = {}
    for col in data['Collections']:
        for key in ('Name', 'Metadata', 'Paper', 'README'):
            assert key in col, f'{rel}: collection without {key}: {col}'
        assert col['Metadata'].get('Training Data'), f'{rel}: {col["Name"]} lacks Training Data'
        assert {'URL', 'Title'} <= set(col['Paper']), f'{rel}: {col["Name"]} Paper needs URL, Title'
        assert (ROOT / col['README']).is_file(), f'{rel}: README {col["README"]} is missing'
        collections[col['Name']] = col
    assert data['Models'], f'{rel} lists no model'
    for model in data['Models']:
        name = model.get('Name')
        for key in ('Name', 'In Collection', 'Config', 'Metadata'):
            assert key in model, f'{rel}: model {name} without {key}'
        assert model['In Collection'] in collections, f'{rel}: {name} in an unknown collection'
        assert Path(model['Config']).stem == name, f'{rel}: {name} names {model["Config"]}'
        meta = model['Metadata']
        assert meta.get('Training Data'), f'{rel}: {name} lacks Metadata.Training Data'
        assert isinstance(meta.get('Parameters'), int) and meta['Parameters'] > 0, \
            f'{rel}: {name} needs Metadata.Parameters (an integer count)'
        for result in model.get('Results') or []:
            assert {'Task', 'Dataset', 'Metrics'} <= set(result), f'{rel}: {name}: {result}'
            assert result['Metrics'] and all(
                isinstance(v, (int, float)) for v in result['Metrics'].values()), \
                f'{rel}: {name}: metrics must be numbers: {result["Metrics"]}'
        if 'Weights' in model:
            assert str(model['Weights']).startswith('https://'), f'{rel}: {name} Weights'
        # the family README names every config of its metafile
        readme = (ROOT / collections[model['In Collection']]['README']).read_text()
        assert Path(model['Config']).name in readme, \
            f'{collections[model["In Collection"]]["README"]} does not list {model["Config"]}'


def test_every_shipped_config_is_in_a_metafile_and_back(models):
    listed = [model['Config'] for _, model in models]
    duplicates = sorted({c for c in listed if listed.count(c) > 1})
    assert not duplicates, f'configs listed twice: {duplicates}'
    shipped = shipped_configs()
    missing = sorted(shipped - set(listed))
    assert not missing, f'configs in no metafile of model-index.yml: {missing}'
    unknown = sorted(set(listed) - shipped)
    assert not unknown, f'metafile Config: entries that are not shipped configs: {unknown}'
    names = [model['Name'] for _, model in models]
    assert len(names) == len(set(names)), 'model names must be unique across metafiles'
