"""Inference: the student's one pass against the three teachers run one after another, on the same audio, in
the same process, in interleaved rounds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .machine import load_average
from .memory import MIB, PeakCUDA
from .models import TEACHERS, StudentAutocast, StudentEncoderOnly, StudentOnePass, WhisperUnpadded, WhisperWindows, test_audio
from .timing import TimedCandidate, median_ratio, run_interleaved, synchronize

# The teachers summed as "three teachers one after another", with Whisper run either way.
TEACHER_TRIOS = {
    "three teachers (whisper 30 s windows + ast + wavlm-sv)": ("whisper-30s", "ast", "wavlm-sv"),
    "three teachers (whisper unpadded + ast + wavlm-sv)": ("whisper-unpadded", "ast", "wavlm-sv"),
}


@dataclass(frozen=True)
class InferenceSetting:
    """One batch shape and how often each model is timed there.

    `teachers` names keys of `models.TEACHERS`; `bf16_autocast` adds the fp32 student under bf16 autocast.
    """

    batch_size: int
    duration_s: float = 10.0
    student_warmup: int = 3
    student_rounds: int = 5
    teachers: tuple[str, ...] = ()
    teacher_warmup: int = 1
    teacher_rounds: int = 3
    bf16_autocast: bool = False

    @property
    def label(self) -> str:
        return f"batch {self.batch_size} x {self.duration_s:g} s"


def run_inference(
    device: torch.device,
    dtype: torch.dtype,
    preset: str,
    settings: list[InferenceSetting],
    report: Callable[[str], None] = print,
) -> list[dict]:
    """One result row per model and setting (plus the teacher trios), reported as soon as each setting ends."""
    report(f"building {preset} ({dtype}) on {device}")
    student = StudentOnePass(preset, device, dtype)
    teachers = _build_teachers({name for setting in settings for name in setting.teachers}, device, dtype, report)
    rows = []
    for setting in settings:
        rows.extend(_run_setting(setting, student, teachers, device, report))
    return rows


def _build_teachers(names: set[str], device: torch.device, dtype: torch.dtype, report: Callable[[str], None]) -> dict:
    teachers = {}
    if names & {"whisper-30s", "whisper-unpadded"}:
        report("building whisper-large-v3 encoder (random weights)")
        windows = WhisperWindows(device, dtype)
        teachers["whisper-30s"] = windows
        teachers["whisper-unpadded"] = WhisperUnpadded.sharing_weights(windows)
    for name in sorted(names - {"whisper-30s", "whisper-unpadded"}):
        report(f"building {name} (random weights)")
        teachers[name] = TEACHERS[name](device, dtype)
    return {name: teacher for name, teacher in teachers.items() if name in names}


def _run_setting(setting, student, teachers, device, report) -> list[dict]:
    report(f"inference, {setting.label}, {device}, load average {load_average()}")
    load_before = load_average()
    waveforms = test_audio(setting.batch_size, setting.duration_s)
    audio_s = setting.batch_size * setting.duration_s

    feature_seconds = []
    for _ in range(3):
        start = time.perf_counter()
        student_inputs = student.inputs(waveforms)
        synchronize(device)
        feature_seconds.append(time.perf_counter() - start)

    students = [student, StudentEncoderOnly(student)]
    if setting.bf16_autocast:
        students.append(StudentAutocast(student, torch.bfloat16))
    workloads = students + [teachers[name] for name in setting.teachers]
    inputs = {workload.name: student_inputs if workload in students else workload.inputs(waveforms) for workload in workloads}
    candidates = [
        TimedCandidate(
            workload.name,
            (lambda workload=workload: workload.run(inputs[workload.name])),
            warmup=setting.student_warmup if workload.family == "student" else setting.teacher_warmup,
            rounds=setting.student_rounds if workload.family == "student" else setting.teacher_rounds,
        )
        for workload in workloads
    ]
    with torch.inference_mode():
        run_interleaved(candidates, device, report)

    load_after = load_average()
    timed = {candidate.name: candidate for candidate in candidates}
    one_pass = timed[student.name]
    rows = [
        {
            "section": "inference",
            "setting": setting.label,
            "model": f"{student.preset} fbank features (CPU, numpy)",
            "family": "student",
            "batch_size": setting.batch_size,
            "audio_s_per_call": audio_s,
            "seconds": feature_seconds,
            "median_s": statistics.median(feature_seconds),
            "audio_s_per_s": audio_s / statistics.median(feature_seconds),
            "real_time_factor": statistics.median(feature_seconds) / audio_s,
        }
    ]
    for workload in workloads:
        candidate = timed[workload.name]
        flops = workload.count_flops(inputs[workload.name])
        row = {
            "section": "inference",
            "setting": setting.label,
            "model": workload.name,
            "family": workload.family,
            "parameters": workload.parameters,
            "dtype": str(workload.dtype).removeprefix("torch."),
            "batch_size": setting.batch_size,
            "audio_s_per_call": audio_s,
            "seconds": candidate.seconds,
            "cpu_seconds": candidate.cpu_seconds,
            "median_s": candidate.median_s,
            "min_s": min(candidate.seconds),
            "median_cpu_s": candidate.median_cpu_s,
            "ms_per_call": 1000 * candidate.median_s,
            "audio_s_per_s": audio_s / candidate.median_s,
            "real_time_factor": candidate.median_s / audio_s,
            "gflop_per_call": flops / 1e9,
            "achieved_tflop_per_s": flops / candidate.median_s / 1e12,
        }
        if workload.family == "teacher":
            row["one_pass_speedup"] = median_ratio(candidate.seconds, one_pass.seconds)
        elif candidate is not one_pass:
            row["time_relative_to_one_pass"] = median_ratio(candidate.seconds, one_pass.seconds)
        if device.type == "cuda":
            with torch.inference_mode(), PeakCUDA(device) as peak:
                workload.run(inputs[workload.name])
            row["peak_memory_mib"] = peak.peak_bytes / MIB
        rows.append(row)
        report(_summary(row))

    for trio_name, members in TEACHER_TRIOS.items():
        if not all(teachers.get(name) is not None and name in setting.teachers for name in members):
            continue
        member_seconds = [timed[teachers[name].name].seconds for name in members]
        per_round = [sum(round_seconds) for round_seconds in zip(*member_seconds)]
        median_s = statistics.median(per_round)
        row = {
            "section": "inference",
            "setting": setting.label,
            "model": trio_name,
            "family": "teachers",
            "parameters": sum(teachers[name].parameters for name in members),
            "batch_size": setting.batch_size,
            "audio_s_per_call": audio_s,
            "seconds": per_round,
            "median_s": median_s,
            "ms_per_call": 1000 * median_s,
            "audio_s_per_s": audio_s / median_s,
            "real_time_factor": median_s / audio_s,
            "one_pass_speedup": median_ratio(per_round, one_pass.seconds),
        }
        rows.append(row)
        report(_summary(row))
    for row in rows:
        row["load_average_before_after"] = [load_before, load_after]
    return rows


def _summary(row: dict) -> str:
    text = (
        f"  {row['setting']}: {row['model']}: {row['median_s']:.4f} s/call, {row['audio_s_per_s']:.1f} s audio/s, "
        f"RTF {row['real_time_factor']:.4f}"
    )
    if "median_cpu_s" in row:
        text += f" ({row['median_cpu_s']:.4f} CPU s/call)"
    if "one_pass_speedup" in row:
        text += f", one pass is {row['one_pass_speedup']:.1f}x faster"
    if "time_relative_to_one_pass" in row:
        text += f", {row['time_relative_to_one_pass']:.3f}x the one pass's time"
    if "peak_memory_mib" in row:
        text += f", peak {row['peak_memory_mib'] / 1024:.2f} GiB"
    return text
