"""Time and peak memory of the model card's pattern (`soundfile.read` -> `{"raw", "sampling_rate"}` -> stock
pipeline) on ordinary-but-odd files: stereo, 6 channels, 8 kHz int16, 44,100 and 44,101 Hz.

    python benchmarks/card_pattern_inputs.py MODEL_FOLDER [--seconds 10]

Each case runs in a fresh interpreter; peak memory is the kernel's resident high-water mark during the call above
the memory before it (Linux). Prints one JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

CASES = {  # name: (channels, sampling rate, soundfile subtype, dtype soundfile.read returns)
    "mono float 16 kHz": (1, 16000, "FLOAT", "float32"),
    "stereo float 16 kHz": (2, 16000, "FLOAT", "float32"),
    "6-channel float 48 kHz": (6, 48000, "FLOAT", "float32"),
    "mono int16 8 kHz": (1, 8000, "PCM_16", "int16"),
    "mono float 44,100 Hz": (1, 44100, "FLOAT", "float32"),
    "mono float 44,101 Hz": (1, 44101, "FLOAT", "float32"),
}

SCRIPT = textwrap.dedent('''
    import json, sys, tempfile, time
    from pathlib import Path
    import numpy as np, soundfile, torch
    from transformers import pipeline
    from transformers.utils import logging
    import processing_mt2kd
    torch.set_num_threads(1)
    logging.set_verbosity_error()
    folder, task, channels, rate, subtype, dtype, seconds = sys.argv[1:8]
    channels, rate, seconds = int(channels), int(rate), float(seconds)

    def status_kib(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])

    samples = 0.1 * np.random.default_rng(0).standard_normal((int(seconds * rate), channels))
    path = Path(tempfile.mkdtemp()) / "input.wav"
    soundfile.write(path, samples.squeeze(), rate, subtype=subtype)
    audio, sampling_rate = soundfile.read(path, dtype=dtype)
    pipe = pipeline(task, model=folder)
    pipe({"raw": np.zeros(16000, np.float32), "sampling_rate": 16000})  # warm up
    before = status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    start = time.monotonic()
    pipe({"raw": audio, "sampling_rate": sampling_rate})
    print(json.dumps({"seconds": round(time.monotonic() - start, 2),
                      "peak_mib": round((status_kib("VmHWM") - before) / 1024, 1)}))
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_folder")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each input (default 10)")
    parser.add_argument("--tasks", nargs="+", default=["automatic-speech-recognition", "audio-classification"])
    args = parser.parse_args()
    for task in args.tasks:
        for name, (channels, rate, subtype, dtype) in CASES.items():
            argv = [sys.executable, "-c", SCRIPT, args.model_folder, task, str(channels), str(rate), subtype, dtype,
                    str(args.seconds)]
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            measured = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else {
                "error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
            print(json.dumps({"task": task, "case": name, "input_s": args.seconds, **measured}), flush=True)


if __name__ == "__main__":
    main()
