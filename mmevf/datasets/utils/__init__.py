from .coco_json import load_coco
from .expression_modes import ExpressionModes
from .jsonl_format import ConversionReport, check_line, read_jsonl, write_jsonl
from .safe_pickle import load_refs_pickle

__all__ = [
    'ConversionReport', 'ExpressionModes', 'check_line', 'load_coco', 'load_refs_pickle',
    'read_jsonl', 'write_jsonl'
]
