"""The engine's attention-kernel switch: resolution, effect and equivalence of the kernels."""

import pytest
import torch
import torch.nn.functional as F

from crisscross.config import ConfigError, load_config
from crisscross.data.skeleton import H36M_SKELETON
from crisscross.models.registry import build_model
from crisscross.training.attention_backend import attention_backend, resolve_attention_backend


def test_auto_resolves_to_explicit_on_cpu_and_pytorch_default_on_cuda():
    assert resolve_attention_backend("auto", "cpu") == "explicit"
    assert resolve_attention_backend("math", "cpu") == "math"
    assert resolve_attention_backend("auto", "cuda") == "default"
    assert resolve_attention_backend("flash", "cpu") == "flash"
    with pytest.raises(ValueError, match="unknown attention backend 'fast'"):
        resolve_attention_backend("fast", "cpu")
    with pytest.raises(ValueError, match="train.attention=efficient needs a CUDA device"):
        resolve_attention_backend("efficient", "cpu")


def test_config_rejects_unknown_backend_by_key():
    with pytest.raises(ConfigError, match="train.attention"):
        load_config(None, ["train.attention=fast"])


def test_math_context_runs_the_math_kernel():
    q = torch.randn(4, 2, 22, 16, requires_grad=True)
    with torch.profiler.profile() as prof, attention_backend("math", "cpu"):
        F.scaled_dot_product_attention(q, q, q).sum().backward()
    names = {e.key for e in prof.key_averages()}
    assert "aten::_scaled_dot_product_attention_math" in names
    assert not any("flash" in n for n in names)


def test_explicit_context_bypasses_sdpa_and_restores_on_exit():
    from crisscross.models import attention

    q = torch.randn(4, 3, 2, 22, 16, requires_grad=True)  # [B, G, H, L, c]
    with torch.profiler.profile() as prof, attention_backend("explicit", "cpu"):
        assert attention._explicit
        attention.attend(q, q, q, causal=True).sum().backward()
    assert not attention._explicit
    names = {e.key for e in prof.key_averages()}
    assert not any("scaled_dot_product" in n for n in names), names
    assert "aten::softmax" in names
    with attention.explicit_attention(), attention.explicit_attention(False):
        assert not attention._explicit  # nested contexts restore the outer value
    assert not attention._explicit


@pytest.mark.parametrize("name", ["stcformer", "stcformer-ar", "sttformer"])
def test_kernels_agree_on_outputs_and_gradients(name):
    torch.manual_seed(0)
    model = build_model(name, {"dim": 32}, H36M_SKELETON, 10, 25)
    past = torch.randn(3, 10, 22, 3)
    results = {}
    for backend in ("math", "flash", "explicit"):
        model.zero_grad()
        with attention_backend(backend, "cpu"):
            out = model(past)
        out.square().mean().backward()
        results[backend] = (out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None])
    out_m, g_m = results["math"]
    for backend in ("flash", "explicit"):
        out_x, g_x = results[backend]
        torch.testing.assert_close(out_m, out_x, rtol=1e-4, atol=1e-5)
        for a, b in zip(g_m, g_x, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_explicit_bf16_matches_fp32_attention_to_bf16_precision():
    from crisscross.models.attention import attend

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 5, 1, 22, 32) for _ in range(3))
    reference = attend(q, k, v, causal=True)  # SDPA in fp32
    with attention_backend("explicit", "cpu"), torch.autocast("cpu", dtype=torch.bfloat16):
        out = attend(q, k, v, causal=True)
    assert out.dtype == torch.bfloat16  # no upcast: the reason the explicit path is faster
    torch.testing.assert_close(out.float(), reference, rtol=0, atol=0.05)


def test_explicit_softmax_runs_in_fp32_and_returns_the_input_dtype():
    from crisscross.models.attention import _softmax

    torch.manual_seed(0)
    scores = (torch.randn(64, 22, 22) * 8).bfloat16()
    scores[:, :, 11:] = float("-inf")  # masked keys
    scores.requires_grad_(True)
    weights = _softmax(scores)
    assert weights.dtype == torch.bfloat16
    # Exactly the fp32 softmax rounded once to bf16, not a softmax carried out in bf16 arithmetic.
    assert torch.equal(weights, scores.detach().float().softmax(-1).bfloat16())
    assert torch.all(weights[:, :, 11:] == 0)
    upstream = torch.randn(64, 22, 22).bfloat16()
    (weights * upstream).sum().backward()
    reference = scores.detach().float().requires_grad_(True)
    (reference.softmax(-1) * upstream.float()).sum().backward()
    assert scores.grad.dtype == torch.bfloat16
    torch.testing.assert_close(scores.grad.float(), reference.grad, rtol=0.02, atol=0.01)


def test_train_rejects_a_cuda_only_kernel_on_cpu_in_one_line(capsys):
    from crisscross.cli.main import main

    assert main(["train", "train.device=cpu", "train.attention=cudnn", "track.tensorboard=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["crisscross train: error: train.attention=cudnn needs a CUDA device; on CPU use auto, default, "
                   "explicit, math or flash"]
