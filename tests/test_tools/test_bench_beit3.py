"""tools/analysis/bench_beit3.py --profile: the matrix-product share it reports."""
import torch

from tests.conftest import load_tool


def test_matmul_share_separates_products_from_the_rest():
    bench = load_tool('analysis/bench_beit3')
    x = torch.randn(256, 512)
    linear = torch.nn.Linear(512, 512)
    with torch.inference_mode():
        total, matmul = bench.matmul_share(lambda: torch.exp(x).sum())
        assert total > 0 and matmul == 0  # no matrix product at all
        total, matmul = bench.matmul_share(lambda: [linear(x) for _ in range(20)])
        assert 0.5 * total < matmul <= total  # almost only the linear layers
        q = torch.randn(2, 4, 64, 32)
        total, matmul = bench.matmul_share(
            lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
        assert matmul > 0  # attention counts as a product
