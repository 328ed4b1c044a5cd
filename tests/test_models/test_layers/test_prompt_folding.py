import torch

from mmcvpt.models.layers import FoldedPrompts, fold_prompts, folded_is_cheaper


def _weights(C, seed=0):
    g = torch.Generator().manual_seed(seed)
    qkv_weight = torch.randn(3 * C, C, generator=g)
    qkv_bias = torch.randn(3 * C, generator=g)
    return qkv_weight, qkv_bias, torch.randn(C, C, generator=g)


def test_fold_prompts_shapes():
    C, h, m = 32, 4, 6
    qkv_w, qkv_b, proj_w = _weights(C)
    folded = fold_prompts(torch.randn(m, C), qkv_w, qkv_b, proj_w, h)
    assert isinstance(folded, FoldedPrompts)
    assert folded.mq.shape == (h * m, C)
    assert folded.score_bias.shape == (h * m, )
    assert folded.vo.shape == (h * m, C)
    # Without a q/k/v bias there is no score bias.
    assert fold_prompts(torch.randn(m, C), qkv_w, None, proj_w,
                        h).score_bias is None


def test_fold_per_sample_prompts_shapes():
    B, C, h, m = 3, 16, 2, 5
    qkv_w, qkv_b, proj_w = _weights(C)
    mq, score_bias, vo = fold_prompts(
        torch.randn(B, m, C), qkv_w, qkv_b, proj_w, h)
    assert mq.shape == vo.shape == (B, h * m, C)
    assert score_bias.shape == (B, h * m)


def test_auto_picks_the_cheaper_form():
    # ViT-B: h=12, C=768 -> folded while 12m < 768 + m, i.e. m <= 69.
    assert folded_is_cheaper(768, 12, 10)
    assert folded_is_cheaper(768, 12, 69)
    assert not folded_is_cheaper(768, 12, 70)
    assert not folded_is_cheaper(768, 12, 200)
