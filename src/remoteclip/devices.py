"""Which device a process computes on: the one choice training and evaluation share."""

from __future__ import annotations

import torch


def device_for(want: str = "auto", local_rank: int = 0) -> torch.device:
    """`want` is the config's `device` (auto, cpu, cuda). auto: CUDA when there is one, else CPU.
    On CUDA the process takes GPU `local_rank` of its node (modulo the GPUs it sees) and makes
    it current, so each rank of a node gets its own."""
    if want == "cpu" or (want == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    device = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    torch.cuda.set_device(device)
    return device
