"""A readable table of the metrics of several splits."""
from typing import Dict, List


def format_metric_table(metrics: Dict[str, float]) -> str:
    """``{'refcoco_val/cIoU': 82.1, 'refcoco_testA/cIoU': 83.7, ...}`` -> a table with one row
    per split (the part before the last ``/``) and one column per metric."""
    rows: Dict[str, Dict[str, float]] = {}
    columns: List[str] = []
    for key, value in metrics.items():
        split, _, name = key.rpartition('/')
        rows.setdefault(split or '-', {})[name] = float(value)
        if name not in columns:
            columns.append(name)
    width = max([len('split')] + [len(split) for split in rows])
    lines = ['split'.ljust(width) + ''.join(f'{c:>9}' for c in columns)]
    lines.append('-' * len(lines[0]))
    for split, values in rows.items():
        cells = ''.join(f'{values[c]:>9.2f}' if c in values else f'{"":>9}' for c in columns)
        lines.append(split.ljust(width) + cells)
    return '\n'.join(lines)
