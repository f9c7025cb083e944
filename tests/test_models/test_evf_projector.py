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
])
def test_token_choices(token, expected):
    torch.manual_seed(0)
    projector = EVFProjector(C, out_channels=4, token=token)
    tokens = torch.randn(2, NV + L, C)
    out = projector(tokens, num_vision_tokens=NV)
    assert out.shape == (2, 1, 4)
    torch.testing.assert_close(out, projector.mlp(expected(tokens)))
    assert projector.mlp[0].in_features == (2 * C if token == 'cls_concat' else C)


def test_missing_tokens_are_errors():
    with pytest.raises(ValueError, match='needs image tokens'):
        EVFProjector(C, token='image_cls')(torch.randn(1, L, C), num_vision_tokens=0)
    with pytest.raises(ValueError, match='needs text tokens'):
        EVFProjector(C, token='text_cls')(torch.randn(1, NV, C), num_vision_tokens=NV)
    with pytest.raises(ValueError, match='token must be one of'):
        EVFProjector(C, token='eos')
