"""How the encoder computes: fp32, bf16 or int8, and what ``auto`` picks on this machine.

- ``fp32``: the reference; the same numbers everywhere.
- ``bf16``: matrix products in bfloat16 under CPU autocast, accumulated and normalised in fp32.
  On a CPU with native bf16 instructions (AVX512-BF16, AMX) it is about 1.5x as fast as fp32;
  cosines move by about 0.001, and every evaluation metric of the shipped model stays within
  0.001 of fp32 (README, "The scorer").  On a CPU without them oneDNN emulates bf16, slower
  than fp32, so ``auto`` does not pick it there.
- ``int8``: dynamic quantization of the Linear layers; the fastest, but loses about 0.01 AP.
- ``auto``: ``bf16`` where the CPU has native bf16, else ``fp32``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kgqa_validator.config import check_precision
from kgqa_validator.types import Precision

log = logging.getLogger(__name__)

PRECISIONS = tuple(p.value for p in Precision)
_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU flags (``/proc/cpuinfo`` unless given) include native bf16 arithmetic."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return bool(_NATIVE_BF16_FLAGS.intersection(value.split()))
    return False


@functools.cache
def _torch_bf16_supported() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check(precision: str) -> str:
    """``precision`` itself, or :class:`ConfigurationError` if it is not one of PRECISIONS
    (cheap: nothing about the machine is looked at)."""
    return check_precision(precision).value


def resolve(precision: str) -> str:
    """The concrete precision (``fp32``, ``bf16`` or ``int8``) that ``precision`` stands for."""
    return _auto() if check(precision) == "auto" else precision


@functools.cache
def _auto() -> str:
    return "bf16" if cpu_has_native_bf16() and _torch_bf16_supported() else "fp32"


def threshold_key(precision: str) -> str:
    """The ``threshold.json`` key of the rejection threshold for ``precision``.

    bf16 shares the fp32 threshold: its cosines are within a few thousandths of fp32's, and an
    accuracy-maximising threshold of its own would land elsewhere on the same flat optimum, so
    one candidate could be accepted in fp32 and rejected in bf16 for no reason.
    """
    return "threshold_int8" if precision == "int8" else "threshold"


def quantize(model: Any) -> Any:
    """Dynamic int8 quantization of the Linear layers (on a torch build without quantized
    kernels the fp32 model is kept)."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            # torch announces the move of these kernels to torchao; they work in this range.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    except (RuntimeError, AttributeError, NotImplementedError) as exc:
        log.warning("int8 quantization unavailable (%s); using fp32", exc)
        return model


def prepare(model: Any, precision: str) -> Any:
    """The model to run at ``precision`` (a quantized copy for int8, else ``model`` itself)."""
    return quantize(model) if precision == "int8" else model


@contextlib.contextmanager
def computing(precision: str) -> Iterator[None]:
    """The context every forward pass at ``precision`` runs in (autocast for bf16)."""
    if precision != "bf16":
        yield
        return
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield
