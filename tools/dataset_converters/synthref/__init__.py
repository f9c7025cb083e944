"""SynthRef's generator (``make_synthref.py`` is its command line) and the tokenizers it ships.

Imported from the repository root (``from tools.dataset_converters.synthref import
make_synthref``), as the tests and ``tools/analysis/benchmark.py`` do; nothing in the
``mmevf`` package needs it.
"""
from .generator import (COLORS, EXPRESSION_TYPES, EXTREMES, NUM_OBJECTS, RELATIONS, SHAPES,
                        SIZE_WORDS, SIZES, SPLITS, Expression, describe, make_synthref,
                        parse_expression, place_objects, render, shape_polygon)
from .tokenizers import train_tokenizer, write_bert_vocab
from .twins import make_synthref_twins
from .vocabulary import TWIN_TEXTS

__all__ = [
    'COLORS', 'EXPRESSION_TYPES', 'EXTREMES', 'NUM_OBJECTS', 'RELATIONS', 'SHAPES',
    'SIZE_WORDS', 'SIZES', 'SPLITS', 'Expression', 'describe', 'make_synthref',
    'parse_expression', 'place_objects', 'render', 'shape_polygon', 'train_tokenizer',
    'write_bert_vocab', 'TWIN_TEXTS', 'make_synthref_twins'
]
