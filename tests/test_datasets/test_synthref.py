"""SynthRef's expressions: each names exactly one object of its scene, with a clear margin."""
import numpy as np

from tools.dataset_converters.synthref import describe, make_synthref, place_objects, shape_polygon
from mmevf.utils.tokenizer import build_tokenizer


def obj(shape: str, color: str, cx: float, cy: float, r: float = 20.0) -> dict:
    return dict(shape=shape, color=color, size='small', r=r, cx=cx, cy=cy,
                polygon=shape_polygon(shape, cx, cy, r))


def test_every_expression_singles_out_one_object():
    rng = np.random.default_rng(0)
    total = 0
    for _ in range(300):
        objects = place_objects(rng, 256, 192)
        assert 3 <= len(objects) <= 5
        expressions = [set(describe(objects, i)) for i in range(len(objects))]
        for i, mine in enumerate(expressions):
            for j, other in enumerate(expressions):
                assert i == j or not mine & other, (mine & other, objects)
            total += len(mine)
    assert total > 600


def test_extremes_need_a_margin():
    close = [obj('triangle', 'red', 60, 50), obj('triangle', 'blue', 70, 150),
             obj('circle', 'green', 200, 100)]
    assert 'the leftmost triangle' not in describe(close, 0)  # 10 px: too close to call
    assert 'the topmost triangle' in describe(close, 0)
    assert 'the lowest triangle' in describe(close, 1)
    apart = [obj('triangle', 'red', 30, 50), obj('triangle', 'blue', 90, 150),
             obj('circle', 'green', 200, 100)]
    assert 'the leftmost triangle' in describe(apart, 0)
    assert 'the rightmost triangle' in describe(apart, 1)


def test_colour_shape_and_relations():
    scene = [obj('circle', 'red', 40, 100), obj('circle', 'red', 220, 100),
             obj('square', 'blue', 130, 100)]
    assert 'the red circle' not in describe(scene, 0)  # two red circles
    assert describe(scene, 2)[0] == 'the blue square'
    assert 'the circle left of the blue square' in describe(scene, 0)
    assert 'the circle right of the blue square' in describe(scene, 1)


def test_layout_and_tokenizers(tmp_path):
    counts = make_synthref(str(tmp_path), num_images=12, seed=3)
    assert sum(c['images'] for c in counts.values()) == 12
    for folder in ('tokenizer', 'bert_tokenizer'):
        tokenizer = build_tokenizer(str(tmp_path / folder))
        ids = tokenizer('the circle left of the blue square')['input_ids']
        assert tokenizer.unk_token_id not in ids
    assert type(build_tokenizer(str(tmp_path / 'bert_tokenizer'))).__name__.startswith('Bert')
