"""CVPTViT options that start the tuned model at (or next to) the frozen
one: ``cross_attn_value_bias=False`` and ``cross_attn_gate=True``.

Checked against the plain-torch reference (tests/test_models/reference.py)
with the cross-attention weights given as a separate set that has the value
and output biases zeroed, or the output projection scaled by the gate.
"""
import pytest
import torch

from mmcvpt.models import CVPTViT
from mmcvpt.peft import (CheckpointError, check_peft_signature,
                         peft_signature)
from tests.test_models.reference import ref_vit

C, HEADS, L, M, IMG, P = 32, 4, 3, 5, 32, 8


def build(**kwargs):
    torch.manual_seed(0)
    model = CVPTViT(
        arch=dict(embed_dims=C, num_layers=L, num_heads=HEADS,
                  feedforward_channels=64),
        img_size=IMG, patch_size=P, out_type='raw', num_prompts=M,
        layer_scale_init_value=1e-5, **kwargs).double()
    model.eval()
    with torch.no_grad():  # LayerScale around 1 and prompts of size ~1, so
        for name, p in model.named_parameters():  # that every term counts
            if name.endswith(('gamma1.weight', 'gamma2.weight')):
                p.copy_(1 + 0.3 * torch.randn_like(p))
        if model.prompts is not None:
            model.prompts.normal_()
    return model


def image():
    return torch.randn(2, 3, IMG, IMG, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(3))


def ca_weights(sd, value_bias=True, scale=None):
    """The self-attention weights as a separate cross-attention set."""
    out = dict(sd)
    for i in range(L):
        src, dst = f'layers.{i}.attn.', f'cross_attn.{i}.'
        qkv_b = sd[src + 'qkv.bias'].clone()
        proj_w, proj_b = sd[src + 'proj.weight'], sd[src + 'proj.bias']
        if not value_bias:
            qkv_b[2 * C:] = 0
            proj_b = torch.zeros_like(proj_b)
        if scale is not None:
            proj_w, proj_b = proj_w * scale[i], proj_b * scale[i]
        out.update({dst + 'qkv.weight': sd[src + 'qkv.weight'],
                    dst + 'qkv.bias': qkv_b, dst + 'proj.weight': proj_w,
                    dst + 'proj.bias': proj_b})
    return out


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('position', ['after_attn', 'in_ffn'])
def test_no_value_bias_equals_reference(impl, position):
    model = build(cross_attn_value_bias=False, cross_attn_impl=impl,
                  prompt_position=position)
    sd = model.state_dict()
    want = ref_vit(image(), ca_weights(sd, value_bias=False), L, HEADS, P,
                   sd['prompts'], position, separate_ca=True)
    with torch.no_grad():
        got = model(image())[0]
    assert (got - want).abs().max() < 1e-10
    # and the paper's cross-attention (with bv, bo) is a different function
    paper = ref_vit(image(), sd, L, HEADS, P, sd['prompts'], position)
    assert (got - paper).abs().max() > 1e-3


def test_no_value_bias_zero_prompts_is_the_frozen_model():
    """The constant shift bv Wo + bo is what moves the default away from
    the frozen ViT when the prompts carry nothing."""
    frozen = ref_vit(image(), build().state_dict(), L, HEADS, P)
    for value_bias, close in ((False, True), (True, False)):
        model = build(cross_attn_value_bias=value_bias)
        with torch.no_grad():
            model.prompts.zero_()
            got = model(image())[0]
        assert ((got - frozen).abs().max() < 1e-10) == close


def test_zero_gate_starts_at_the_frozen_model_and_learns():
    model = build(cross_attn_gate=True)
    assert model.cross_attn_gates.shape == (L, )
    assert model.cross_attn_gates.requires_grad
    assert not model.cross_attn_gates.any()
    frozen = ref_vit(image(), model.state_dict(), L, HEADS, P)
    model.train()
    model.prompt_dropout.p = 0.
    out = model(image())[0]
    assert (out.detach() - frozen).abs().max() < 1e-10
    out.pow(2).sum().backward()
    assert model.cross_attn_gates.grad.abs().min() > 0  # the gates move
    assert not model.prompts.grad.any()  # prompts get gradient after that
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {'prompts', 'cross_attn_gates'}


@pytest.mark.parametrize('impl', ['folded', 'direct'])
def test_gate_scales_the_cross_attention(impl):
    model = build(cross_attn_gate=True, cross_attn_impl=impl)
    gates = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64)
    with torch.no_grad():
        model.cross_attn_gates.copy_(gates)
        got = model(image())[0]
    sd = model.state_dict()
    want = ref_vit(image(), ca_weights(sd, scale=gates), L, HEADS, P,
                   sd['prompts'], 'after_attn', separate_ca=True)
    assert (got - want).abs().max() < 1e-10


def test_options_are_in_the_peft_signature():
    plain = peft_signature(build())
    assert 'cross_attn_value_bias' not in plain  # at the default: left out
    assert 'cross_attn_gate' not in plain
    sig = build(cross_attn_value_bias=False, cross_attn_gate=True)
    meta = peft_signature(sig)
    assert meta['cross_attn_value_bias'] is False
    assert meta['cross_attn_gate'] is True
    with pytest.raises(CheckpointError, match=r'saved for '
                       r'cross_attn_value_bias=True but this model has '
                       r'cross_attn_value_bias=False'):
        check_peft_signature(sig, plain)
    with pytest.raises(CheckpointError, match=r'saved for '
                       r'cross_attn_value_bias=False but this model has '
                       r'cross_attn_value_bias=True'):
        check_peft_signature(build(), meta)
