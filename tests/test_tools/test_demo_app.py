"""The browser demo (tools/demo/) without a browser (FastAPI's TestClient): the page and its
static files (nothing from elsewhere), masks equal to TextSegInferencer's, the [semantic]
toggle, the image embedding LRU (a second request on the same image does not run SAM's image
encoder), points / boxes when the inferencer takes them, a no-target head's verdict in the
payload, and bad input answered with a readable error while the server keeps serving."""
import base64
import inspect
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch

from mmevf.apis import TextSegInferencer
from tests.conftest import NO_TARGET_PROBABILITY, force_no_target, load_tool

pytest.importorskip('fastapi', reason='fastapi is not installed (requirements/demo.txt)')
pytest.importorskip('httpx', reason="httpx (FastAPI's TestClient) is not installed "
                    '(requirements/tests.txt)')
from fastapi.testclient import TestClient  # noqa: E402

from tools.demo.embedding_lru import ImageEmbeddingLRU  # noqa: E402
from tools.demo.server import STATIC_DIR, create_app  # noqa: E402
from tools.demo.service import DemoService, list_examples  # noqa: E402

demo = load_tool('demo/app')  # the command line
CONFIG = 'evf-tiny_synthref'


@pytest.fixture(scope='module')
def inferencer(tiny_checkpoint, synthref_root) -> TextSegInferencer:
    return TextSegInferencer(CONFIG, weights=str(tiny_checkpoint),
                             tokenizer=str(synthref_root / 'tokenizer'), device='cpu',
                             show_progress=False)


@pytest.fixture(scope='module')
def reference(tiny_checkpoint, synthref_root) -> TextSegInferencer:
    """A second inferencer on the same weights, without the demo's cache."""
    return TextSegInferencer(CONFIG, weights=str(tiny_checkpoint),
                             tokenizer=str(synthref_root / 'tokenizer'), device='cpu',
                             show_progress=False)


@pytest.fixture(scope='module')
def service(inferencer, synthref_root):
    service = DemoService(inferencer, list_examples(str(synthref_root / 'images'), 3),
                          cache_size=4, model_name=CONFIG, weights='tiny.pth')
    assert inferencer.model.image_embedding_memo is service.cache
    yield service
    service.close()
    assert inferencer.model.image_embedding_memo is None


@pytest.fixture(scope='module')
def client(service):
    with TestClient(create_app(service)) as client:
        yield client


@pytest.fixture(scope='module')
def image_files(synthref_root) -> list:
    return sorted((synthref_root / 'images').glob('*.jpg'))


def data_url(path: Path) -> str:
    return 'data:image/jpeg;base64,' + base64.b64encode(path.read_bytes()).decode()


def decode_png(url: str) -> np.ndarray:
    assert url.startswith('data:image/png;base64,')
    return mmcv.imfrombytes(base64.b64decode(url.split(',', 1)[1]), flag='unchanged')


class EncoderCalls:
    """Counts the images that go through a module's forward."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.images = 0
        self.handle = module.register_forward_hook(self.count)

    def count(self, module, args, output) -> None:
        self.images += args[0].shape[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def test_page_and_static_files_work_offline(client):
    page = client.get('/')
    assert page.status_code == 200 and 'text/html' in page.headers['content-type']
    assert '/static/app.js' in page.text and 'id="upload"' in page.text
    for name in ('app.js', 'style.css'):
        assert client.get(f'/static/{name}').status_code == 200
    # the page loads nothing from another host (no CDN at run time)
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert 'http://' not in text and 'https://' not in text and "'//" not in text, path
    assert client.get('/api/health').json()['status'] == 'ok'


def test_info(client, service, inferencer):
    info = client.get('/api/info').json()
    params = inspect.signature(inferencer.__call__).parameters
    assert info['model'] == CONFIG and info['semantic_prefix'] == '[semantic] '
    assert info['points'] == ('points' in params) and info['boxes'] == ('boxes' in params)
    assert info['examples'] == list(service.examples) and len(info['examples']) == 3
    example = client.get(f'/api/examples/{info["examples"][0]}')
    assert example.status_code == 200
    assert example.content == service.examples[info['examples'][0]].read_bytes()
    assert client.get('/api/examples/..%2Fsecret.jpg').status_code == 404


def test_masks_equal_the_inferencer(client, reference, image_files):
    texts = ['the red circle', 'the larger triangle on the right']
    reply = client.post('/api/segment', json=dict(image=data_url(image_files[0]), texts=texts))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    expected = reference(str(image_files[0]), texts, return_vis=True)
    pred = expected['predictions'][0]
    height, width = pred['masks'].shape[1:]
    assert (body['width'], body['height']) == (width, height)
    assert [r['text'] for r in body['results']] == texts
    for result, mask, score, drawing in zip(body['results'], pred['masks'], pred['scores'],
                                            expected['visualization'][0]):
        np.testing.assert_array_equal(decode_png(result['mask']), mask.astype(np.uint8) * 255)
        assert result['score'] == pytest.approx(score, abs=1e-6)
        assert result['area'] == int(mask.sum())
        overlay = decode_png(result['overlay'])  # BGR
        np.testing.assert_array_equal(overlay[..., ::-1], drawing)


# one result of /api/segment for a model without a no-target head
HEADLESS_RESULT_KEYS = {'text', 'caption', 'score', 'area', 'mask', 'overlay'}


def test_no_target_payload(client, no_target_model, synthref_root, image_files, monkeypatch):
    """A model with a no-target head: each result says ``no_target`` and its
    ``no_target_score``; a no-target expression's mask is empty. Without the head, the
    results keep their keys."""
    texts = ['the red circle', 'the blue square']
    reply = client.post('/api/segment', json=dict(image=data_url(image_files[0]), texts=texts))
    assert [set(result) for result in reply.json()['results']] == [HEADLESS_RESULT_KEYS] * 2

    config, weights = no_target_model
    inferencer = TextSegInferencer(str(config), weights=str(weights),
                                   tokenizer=str(synthref_root / 'tokenizer'), device='cpu',
                                   show_progress=False)
    service = DemoService(inferencer, cache_size=0, model_name='no-target')
    force_no_target(monkeypatch, [True, False])
    with TestClient(create_app(service)) as head_client:
        reply = head_client.post('/api/segment', json=dict(image=data_url(image_files[0]),
                                                           texts=texts))
    service.close()
    assert reply.status_code == 200, reply.text
    results = reply.json()['results']
    assert [set(result) for result in results] == [
        HEADLESS_RESULT_KEYS | {'no_target', 'no_target_score'}] * 2
    assert [result['no_target'] for result in results] == [True, False]
    assert [result['no_target_score'] for result in results] == pytest.approx(
        [NO_TARGET_PROBABILITY, 1 - NO_TARGET_PROBABILITY], abs=1e-5)
    assert results[0]['area'] == 0 and not decode_png(results[0]['mask']).any()
    assert results[1]['area'] > 0  # the tiny model's random masks are not empty


def test_semantic_toggle_prefixes(client, image_files):
    reply = client.post('/api/segment', json=dict(
        image=data_url(image_files[1]), semantic=True,
        texts=['sky', '[semantic] person', '  two   spaces ']))
    assert reply.status_code == 200, reply.text
    assert [r['text'] for r in reply.json()['results']] == [
        '[semantic] sky', '[semantic] person', '[semantic] two spaces']


def test_second_request_reuses_the_image_embedding(client, service, inferencer, image_files):
    first, second = data_url(image_files[2]), data_url(image_files[3])
    with EncoderCalls(inferencer.model.image_encoder) as calls:
        reply = client.post('/api/segment', json=dict(image=first, texts=['red circle']))
        assert reply.json()['image_encoded'] is True and calls.images == 1
        hits = service.cache.hits
        # other expressions, the [semantic] toggle, on the same image: no encoder pass
        for texts, semantic in ((['blue square', 'triangle'], False), (['circle'], True)):
            reply = client.post('/api/segment', json=dict(image=first, texts=texts,
                                                          semantic=semantic))
            assert reply.status_code == 200 and reply.json()['image_encoded'] is False
        assert calls.images == 1 and service.cache.hits == hits + 2
        # another image is encoded; the first is still cached afterwards
        assert client.post('/api/segment', json=dict(image=second, texts=['x'])).json()[
            'image_encoded'] is True
        assert client.post('/api/segment', json=dict(image=first, texts=['y'])).json()[
            'image_encoded'] is False
        assert calls.images == 2
    # an example and the upload of the same file are the same pixels: one entry
    name = list(service.examples)[0]
    with EncoderCalls(inferencer.model.image_encoder) as calls:
        client.post('/api/segment', json=dict(example=name, texts=['a']))
        client.post('/api/segment', json=dict(image=data_url(service.examples[name]),
                                              texts=['b']))
        assert calls.images <= 1


def test_cached_masks_equal_uncached(client, reference, image_files):
    texts = ['the small green square at the bottom']
    for _ in range(2):  # the second is served from the cache
        body = client.post('/api/segment', json=dict(image=data_url(image_files[4]),
                                                     texts=texts)).json()
    assert body['image_encoded'] is False
    mask = reference(str(image_files[4]), texts)['predictions'][0]['masks'][0]
    np.testing.assert_array_equal(decode_png(body['results'][0]['mask']),
                                  mask.astype(np.uint8) * 255)


class FakeEncoder:
    """An image encoder recording the batches it gets."""

    def __init__(self) -> None:
        self.batches = []

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.batches.append(images.shape[0])
        return images.mean(dim=(2, 3), keepdim=True) * 2


def test_image_embedding_lru():
    encoder, cache = FakeEncoder(), ImageEmbeddingLRU(size=2)
    a, b, c = (torch.full((3, 8, 8), float(v)) for v in (1, 2, 3))
    out = cache(torch.stack([a, b, a]), encoder)
    assert encoder.batches == [2]  # a once, b once, in one pass
    torch.testing.assert_close(out, torch.stack([a, b, a]).mean(dim=(2, 3), keepdim=True) * 2)
    cache(a[None], encoder)  # hit; a becomes the most recent
    assert encoder.batches == [2] and cache.hits == 2 and cache.misses == 2
    cache(c[None], encoder)  # evicts b, the least recently used
    cache(a[None], encoder)
    assert encoder.batches == [2, 1]
    cache(b[None], encoder)
    assert encoder.batches == [2, 1, 1] and len(cache.entries) == 2
    assert cache.stats() == dict(size=2, entries=2, hits=3, misses=4, encoder_runs=3)
    # size 0: no cache
    cache, encoder = ImageEmbeddingLRU(size=0), FakeEncoder()
    cache(a[None], encoder)
    cache(a[None], encoder)
    assert encoder.batches == [1, 1] and not cache.entries


def test_segmentor_consults_the_memo(inferencer, tmp_path):
    """The segmentor's image-embedding step goes through its ``image_embedding_memo`` (the
    demo's LRU), unless its embedding is not the image's alone."""
    model, previous = inferencer.model, inferencer.model.image_embedding_memo
    images = torch.randn(2, 3, model.image_encoder.img_size, model.image_encoder.img_size)
    calls = []
    model.image_embedding_memo = lambda imgs, encode: (calls.append(len(imgs)), encode(imgs))[1]
    try:
        with torch.no_grad():
            memoised = model.image_embeddings(dict(img=images))
            model.image_embedding_cacheable = False  # e.g. DIT with its text injector
            direct = model.image_embeddings(dict(img=images))
    finally:
        del model.image_embedding_cacheable
        model.image_embedding_memo = previous
    assert calls == [2] and torch.equal(memoised, direct)


@pytest.mark.parametrize('body, status, message', [
    (dict(image='data:image/jpeg;base64,' + base64.b64encode(b'\xff\xd8 not a jpeg' * 30)
          .decode(), texts=['a']), 400, 'cannot decode the uploaded file'),
    (dict(image='data:image/png;base64,' + base64.b64encode(b'').decode(), texts=['a']), 400,
     'the uploaded file is empty'),
    (dict(image='data:image/png;base64,@@@', texts=['a']), 400, 'not valid base64'),
    (dict(texts=['a']), 400, 'no image: upload an image or pick an example'),
    (dict(example='missing.jpg', texts=['a']), 404, "no example image named 'missing.jpg'"),
    (dict(example='EXAMPLE', texts=[]), 400, 'no expression'),
    (dict(example='EXAMPLE', texts=['red', '   ']), 400, 'expression 2 is empty'),
    (dict(example='EXAMPLE', texts=['x'] * 17), 400, 'at most 16'),
    (dict(example='EXAMPLE', texts=['x', 3]), 400, 'expression 2 is not text: 3'),
    (dict(example='EXAMPLE', texts='not a list'), 422, 'texts'),
])
def test_bad_requests_get_readable_errors(client, service, body, status, message):
    if body.get('example') == 'EXAMPLE':
        body = dict(body, example=list(service.examples)[0])
    reply = client.post('/api/segment', json=body)
    assert reply.status_code == status, reply.text
    detail = reply.json()['detail']
    assert message in (detail if isinstance(detail, str) else str(detail))
    # the server still serves
    assert client.get('/api/health').status_code == 200
    ok = client.post('/api/segment', json=dict(example=list(service.examples)[0], texts=['a']))
    assert ok.status_code == 200


def test_corrupt_upload_check(client, image_files):
    reply = client.post('/api/image', json=dict(
        image='data:image/jpeg;base64,' + base64.b64encode(b'GIF89a garbage').decode()))
    assert reply.status_code == 400
    assert reply.json()['detail'].startswith('cannot decode the uploaded file: it is not an '
                                             'image')
    good = client.post('/api/image', json=dict(image=data_url(image_files[0])))
    height, width = mmcv.imread(str(image_files[0])).shape[:2]
    assert good.json() == dict(width=width, height=height)


def test_internal_error_is_answered(client, service, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('simulated failure')

    monkeypatch.setattr(service, 'inferencer', broken)
    reply = client.post('/api/segment', json=dict(example=list(service.examples)[0],
                                                  texts=['a']))
    assert reply.status_code == 500
    assert 'simulated failure' in reply.json()['detail']
    assert 'still running' in reply.json()['detail']
    monkeypatch.undo()
    assert client.post('/api/segment', json=dict(example=list(service.examples)[0],
                                                 texts=['a'])).status_code == 200


def test_points_and_box(client, service, reference, image_files):
    example = list(service.examples)[0]
    height, width = mmcv.imread(str(service.examples[example])).shape[:2]
    point, box = [width / 2, height / 2, 1], [2, 3, width / 2, height / 2]
    # the default model's TextSegInferencer takes SAM's points and boxes: the page shows them
    assert service.accepts == dict(points=True, boxes=True)
    assert client.get('/api/info').json()['points'] is True
    texts = ['the red circle', 'a square']
    reply = client.post('/api/segment', json=dict(example=example, texts=texts,
                                                  points=[point, [1, 1, 0]], box=box))
    assert reply.status_code == 200, reply.text
    results = reply.json()['results']
    assert [r['caption'] for r in results] == [f'{t} + 2 point(s) + a box' for t in texts]
    expected = reference(str(service.examples[example]), texts,
                         points=[[tuple(point), (1, 1, 0)]] * 2, boxes=[tuple(box)] * 2)
    for result, mask in zip(results, expected['predictions'][0]['masks']):
        np.testing.assert_array_equal(decode_png(result['mask']), mask.astype(np.uint8) * 255)
    # no text: the points / box alone
    alone = client.post('/api/segment', json=dict(example=example, texts=[], box=box))
    assert alone.status_code == 200, alone.text
    assert alone.json()['results'][0]['caption'] == 'a box'
    # outside the image
    bad = client.post('/api/segment', json=dict(example=example, texts=['a'],
                                                points=[[width + 5, 1, 1]]))
    assert bad.status_code == 400 and 'outside' in bad.json()['detail']


def test_inferencer_without_points_and_boxes(client, service, monkeypatch):
    """An inferencer that takes expressions only (another version's): the page is told to hide
    the point / box tools, and a request carrying them is refused, not run without them."""
    monkeypatch.setitem(service.accepts, 'points', False)
    monkeypatch.setitem(service.accepts, 'boxes', False)
    info = client.get('/api/info').json()
    assert info['points'] is False and info['boxes'] is False
    example = list(service.examples)[0]
    reply = client.post('/api/segment', json=dict(example=example, texts=['a'],
                                                  points=[[1, 1, 1]]))
    assert reply.status_code == 400 and 'takes no points' in reply.json()['detail']
    reply = client.post('/api/segment', json=dict(example=example, texts=['a'],
                                                  box=[1, 1, 5, 5]))
    assert reply.status_code == 400 and 'takes no boxes' in reply.json()['detail']
    # a box alone is not taken for "SAM prompted by the box": there is no expression
    reply = client.post('/api/segment', json=dict(example=example, texts=[], box=[1, 1, 5, 5]))
    assert reply.status_code == 400
    assert client.post('/api/segment', json=dict(example=example,
                                                 texts=['a'])).status_code == 200


def test_missing_checkpoint_says_run_make_demo(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, 'ROOT', tmp_path)
    with pytest.raises(SystemExit, match='Run `make demo` first'):
        demo.default_weights(demo.DEFAULT_CONFIG)
    pointer = tmp_path / 'work_dirs' / 'evf-tiny_synthref' / 'last_checkpoint'
    pointer.parent.mkdir(parents=True)
    pointer.write_text(str(tmp_path / 'gone.pth'))
    with pytest.raises(SystemExit, match='gone.pth, which does not exist'):
        demo.default_weights(demo.DEFAULT_CONFIG)
    (tmp_path / 'gone.pth').write_bytes(b'')
    assert demo.default_weights('configs/evf_sam/evf-tiny_synthref.py') == str(
        tmp_path / 'gone.pth')
