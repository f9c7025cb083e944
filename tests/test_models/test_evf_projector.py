"""EVFProjector picks the token of the paper's Tab. 5 and projects it to SAM's prompt width."""
import pytest
import torch

from mmevf.models.necks import EVFProjector

NV, L, C = 5, 3, 8


@pytest.mark.parametrize('token, expected', [
    ('image_cls', lambda t: t[:, :1]),
    ('text_cls', lambda t: t[:, NV:NV + 1]),
    ('image_mean', lambda t: t[:, 1:NV].mean(1, keepdim=True)),
    ('cls_concat', lambda t: torch.cat([t[:, :1], t[:, NV:NV + 1]], -1)),
    ('text_mean', lambda t: t[:, NV:].mean(1, keepdim=True)),
])
def test_token_choices(token, expected):
    torch.manual_seed(0)
    projector = EVFProjector(C, out_channels=4, token=token)
    tokens = torch.randn(2, NV + L, C)
    out = projector(tokens, num_vision_tokens=NV)
    assert out.shape == (2, 1, 4)
    torch.testing.assert_close(out, projector.mlp(expected(tokens)))
    assert projector.mlp[0].in_features == (2 * C if token == 'cls_concat' else C)


def test_text_mean_skips_padding():
    """Expression 0 has its 3 words, expression 1 two and a padding token, whose value must
    not count (a huge one would dominate the mean)."""
    torch.manual_seed(0)
    projector = EVFProjector(C, out_channels=4, token='text_mean')
    tokens = torch.randn(2, NV + L, C)
    tokens[1, -1] = 1e6
    padding = torch.tensor([[False, False, False], [False, False, True]])
    selected = projector.select_token(tokens, NV, padding)
    torch.testing.assert_close(selected[0, 0], tokens[0, NV:].mean(0))
    torch.testing.assert_close(selected[1, 0], (tokens[1, NV] + tokens[1, NV + 1]) / 2)
    torch.testing.assert_close(projector(tokens, NV, padding), projector.mlp(selected))
    # text only (no vision tokens) works too: the mean needs no image
    assert projector(tokens[:, NV:], 0, padding).shape == (2, 1, 4)


def test_missing_tokens_are_errors():
    with pytest.raises(ValueError, match='needs image tokens'):
        EVFProjector(C, token='image_cls')(torch.randn(1, L, C), num_vision_tokens=0)
    with pytest.raises(ValueError, match='needs text tokens'):
        EVFProjector(C, token='text_cls')(torch.randn(1, NV, C), num_vision_tokens=NV)
    with pytest.raises(ValueError, match='token must be one of'):
        EVFProjector(C, token='eos')
