"""How fast a run trains, and how close that is to the hardware: the switches that change speed
but not what is learned (train.compile, fused_adamw, channels_last; train.loader is in .data)
and the model FLOPs utilisation that log.csv reports.

MFU is the model's own arithmetic per second over the device's dense peak: FLOPs per sample are
counted once on a forward of one sample (torch.utils.flop_counter, matrix products and
convolutions) and tripled for the backward pass (the usual convention, e.g. PaLM's appendix B),
so recomputation under gradient checkpointing does not count as useful work. The count takes
the path a training step takes: nn.MultiheadAttention's inference fast path (a fused kernel
the counter does not see: ViT-B-32's QKV and output projections) is switched off, and
attention runs on SDPA's math backend, whose score and value products the counter sees as
matrix products (a fused CPU or GPU attention kernel may not be counted).

Rates are per device: a rank's share of the global batch over its step time, against one
device's peak (log.csv also has the global samples/s and the world size).
"""

from __future__ import annotations

import re

import torch

# dense (no sparsity) bf16/fp16 tensor-core peaks, TFLOP/s, from NVIDIA's data sheets, by the
# whole name torch.cuda.get_device_name gives (a pattern must match all of it: "NVIDIA RTX
# A1000" is no A100, "NVIDIA H100 PCIe" no SXM5 part). Another GPU gives no mfu unless
# train.peak_tflops is set. The names are those the CUDA driver reports (nvidia-smi -L).
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"NVIDIA H200", 989.0),  # SXM
    (r"NVIDIA H200 NVL", 835.0),
    (r"NVIDIA H100 80GB HBM3", 989.0),  # SXM5
    (r"NVIDIA H100 PCIe", 756.0),
    (r"NVIDIA H100 NVL", 835.0),
    (r"NVIDIA A100-SXM4-(40|80)GB", 312.0),
    (r"NVIDIA A100-PCIE-40GB", 312.0),
    (r"NVIDIA A100 80GB PCIe", 312.0),
    (r"Tesla V100-SXM2-(16|32)GB", 125.0),
    (r"Tesla V100-PCIE-(16|32)GB", 112.0),
)


def known_peak(name: str) -> float | None:
    """The table's peak for a device named `name` (the whole name must match), else None."""
    return next((peak for pattern, peak in PEAK_TFLOPS if re.fullmatch(pattern, name.strip())), None)


def peak_tflops(device: torch.device, dtype: torch.dtype | None, given: float | None) -> float | None:
    """`given` (train.peak_tflops), else the table's peak for a CUDA device training under
    bf16/fp16 autocast; None where neither applies (no mfu is logged)."""
    if given:
        return float(given)
    if device.type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
        return None
    return known_peak(torch.cuda.get_device_name(device))


def flops_per_sample(model: torch.nn.Module, image_size: int, tokens: torch.Tensor, device: torch.device) -> float:
    """Training FLOPs of one (image, caption) pair: 3x a counted forward (eval mode, so batch
    norms keep their statistics; no gradients, so nothing of the run changes), with every
    matrix product a training step computes (see the module's docstring)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    was_training, fast_path = model.training, torch.backends.mha.get_fastpath_enabled()
    model.eval()
    image = torch.zeros(1, 3, image_size, image_size, device=device)
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(image, tokens[:1].to(device))
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
        model.train(was_training)
    return 3.0 * counter.get_total_flops()


def device_rates(sample_flops: float, global_batch: int, world_size: int, step_s: float, peak: float | None) -> dict:
    """One step's speed: samples/s of the whole run, and TFLOP/s and MFU of one device (its
    share of the global batch in the step's time, over one device's peak)."""
    tflops = sample_flops * (global_batch / world_size) / step_s / 1e12
    return {
        "samples_per_s": global_batch / step_s,
        "tflops": round(tflops, 4),
        "mfu": round(tflops / peak, 4) if peak else "",
        "world_size": world_size,
    }


def use_fused_adamw(setting: bool | str, device: torch.device) -> bool:
    return device.type == "cuda" if setting == "auto" else bool(setting)


def is_convolutional(model: torch.nn.Module) -> bool:
    """An image tower built on convolutions beyond a patch embedding (RN50's ModifiedResNet, a
    timm ResNet): the towers channels-last helps."""
    visual = getattr(model, "visual", model)
    return sum(isinstance(m, torch.nn.Conv2d) for m in visual.modules()) > 1


def use_channels_last(setting: bool | str, model: torch.nn.Module, device: torch.device) -> bool:
    if setting == "auto":
        return device.type == "cuda" and is_convolutional(model)
    return bool(setting)


def compile_model(model: torch.nn.Module, setting: bool | str) -> torch.nn.Module:
    """torch.compile, default mode, with inductor (`true`) or the backend `setting` names
    (e.g. aot_eager: traced and differentiated ahead of time, no code generation). The wrapper
    trains the same parameters; the original module stays what is saved and exported."""
    backend = "inductor" if setting is True else str(setting)
    return torch.compile(model, backend=backend)  # type: ignore[return-value]
