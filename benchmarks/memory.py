"""Peak memory of one section of a run: resident set size on CPU, allocated bytes on CUDA."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

MIB = 2**20


def _status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def current_rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    if kib is None:
        raise RuntimeError("resident set size needs Linux /proc/self/status")
    return kib * 1024


class PeakRSS:
    """Peak resident set size inside a `with` block, and the RSS when it began.

    Linux resets the process's high-water mark (VmHWM) when 5 is written to /proc/self/clear_refs,
    so the peak is the kernel's exact figure; where that is refused, a thread samples VmRSS every
    2 ms instead (`exact` is then False).
    """

    def __init__(self) -> None:
        self.start_bytes = self.peak_bytes = 0
        self.exact = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakRSS":
        self.start_bytes = current_rss_bytes()
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.exact = False
            self.peak_bytes = self.start_bytes
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak_bytes = max(self.peak_bytes, current_rss_bytes())

    def __exit__(self, *exc_info) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        else:
            self.peak_bytes = _status_kib("VmHWM") * 1024

    @property
    def growth_bytes(self) -> int:
        return self.peak_bytes - self.start_bytes


class PeakCUDA:
    """Peak bytes allocated by PyTorch on a CUDA device inside a `with` block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start_bytes = self.peak_bytes = 0

    def __enter__(self) -> "PeakCUDA":
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.start_bytes = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc_info) -> None:
        torch.cuda.synchronize(self.device)
        self.peak_bytes = torch.cuda.max_memory_allocated(self.device)

    @property
    def growth_bytes(self) -> int:
        return self.peak_bytes - self.start_bytes


def peak_memory(device: torch.device) -> PeakRSS | PeakCUDA:
    return PeakCUDA(device) if device.type == "cuda" else PeakRSS()
