"""How fast a run trains, and how close that is to the hardware: the switches that change speed
but not what is learned (train.compile, fused_adamw, channels_last; train.loader is in .data)
and the model FLOPs utilisation that log.csv reports.

MFU is the model's own arithmetic per second over the device's dense peak: FLOPs per sample are
counted once on a forward of one sample (torch.utils.flop_counter, matrix products and
convolutions) and tripled for the backward pass (the usual convention, e.g. PaLM's appendix B),
so recomputation under gradient checkpointing does not count as useful work.
"""

from __future__ import annotations

import torch

# dense (no sparsity) bf16/fp16 tensor-core peaks, TFLOP/s, from NVIDIA's data sheets; matched
# against torch.cuda.get_device_name (a part of the name); another GPU gives no mfu unless
# train.peak_tflops is set
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 80GB HBM3", 989.0),  # SXM5
    ("A100", 312.0),
    ("V100", 125.0),
)


def peak_tflops(device: torch.device, dtype: torch.dtype | None, given: float | None) -> float | None:
    """`given` (train.peak_tflops), else the table's peak for a CUDA device training under
    bf16/fp16 autocast; None where neither applies (no mfu is logged)."""
    if given:
        return float(given)
    if device.type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS if key in name), None)


def flops_per_sample(model: torch.nn.Module, image_size: int, tokens: torch.Tensor, device: torch.device) -> float:
    """Training FLOPs of one (image, caption) pair: 3x a counted forward (eval mode, so batch
    norms keep their statistics; no gradients, so nothing of the run changes)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    image = torch.zeros(1, 3, image_size, image_size, device=device)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(image, tokens[:1].to(device))
    finally:
        model.train(was_training)
    return 3.0 * counter.get_total_flops()


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
