"""Target cache: targets extracted once to disk read back like on-the-fly targets; resumable writes."""

import json
from pathlib import Path

import pytest
import soundfile
import torch
from torch import nn
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)

from modeling_mt2kd.masks import lengths_to_mask
import training_mt2kd.recipe.target_cache as target_cache
from training_mt2kd.recipe.target_cache import TargetCache, TargetCacheWriter, compute_targets, extract_targets
from training_mt2kd.recipe.teachers import (
    AudioClassificationTeacher,
    Teacher,
    TeacherTargets,
    WhisperEncoderTeacher,
    student_num_frames,
)


class LoudnessTeacher(Teacher):
    """A cheap frame-level teacher: RMS and peak of each 640-sample student frame; counts what it sees."""

    target_key = "whisper"

    def __init__(self) -> None:
        super().__init__(nn.Linear(1, 1), "loudness")
        self.utterances_seen = 0

    def _targets(self, waveforms: torch.Tensor, waveform_lengths: torch.Tensor) -> TeacherTargets:
        self.utterances_seen += len(waveform_lengths)
        lengths = student_num_frames(waveform_lengths)
        frames = waveforms[:, : int(lengths.max()) * 640].reshape(len(waveforms), -1, 640)
        values = torch.stack([frames.pow(2).mean(-1).sqrt(), frames.abs().amax(-1)], dim=-1)
        return TeacherTargets(values * lengths_to_mask(lengths, values.shape[1])[:, :, None], lengths)


@pytest.fixture(scope="module")
def an4(data_dir: Path) -> tuple[list[str], list[torch.Tensor]]:
    """Eight real recordings and their ids (paths with slashes, as datasets give them)."""
    paths = sorted((data_dir / "an4" / "wav").glob("*/*.wav"))[:8]
    ids = [str(path.relative_to(data_dir)) for path in paths]
    return ids, [torch.from_numpy(soundfile.read(path, dtype="float32")[0]) for path in paths]


def batches_of(ids, utterances, size):
    for start in range(0, len(ids), size):
        chunk = utterances[start : start + size]
        waveforms = nn.utils.rnn.pad_sequence(chunk, batch_first=True)
        yield ids[start : start + size], waveforms, torch.tensor([len(utterance) for utterance in chunk])


def stored_ids(directory: Path) -> list[str]:
    """Every id listed by every rank index, duplicates kept."""
    ids = []
    for index in directory.glob("index-rank*.json"):
        for shard_ids in json.loads(index.read_text())["shards"].values():
            ids += shard_ids
    return ids


@pytest.fixture(scope="module")
def tiny_teachers() -> list[Teacher]:
    torch.manual_seed(0)
    whisper = WhisperModel(
        WhisperConfig(
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            vocab_size=64,
            max_target_positions=16,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=3,
        )
    )
    tags = ["Speech", "Music", "Dog"]
    tagger = ASTForAudioClassification(
        ASTConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_length=128,
            num_mel_bins=32,
            id2label=dict(enumerate(tags)),
            label2id={tag: index for index, tag in enumerate(tags)},
        )
    )
    return [
        WhisperEncoderTeacher(whisper.get_encoder(), WhisperFeatureExtractor(feature_size=80)),
        AudioClassificationTeacher(tagger, ASTFeatureExtractor(num_mel_bins=32, max_length=128)),
    ]


def test_cached_targets_equal_on_the_fly_targets(tmp_path, an4, tiny_teachers):
    ids, utterances = an4
    with TargetCacheWriter(tmp_path, shard_size=3) as writer:
        assert extract_targets(tiny_teachers, batches_of(ids, utterances, 2), writer) == 8
    order = [5, 0, 7, 2]  # across shards, in a new batch grouping
    _, waveforms, lengths = next(batches_of([ids[i] for i in order], [utterances[i] for i in order], 4))
    on_the_fly = compute_targets(tiny_teachers, waveforms, lengths)
    cached = TargetCache(tmp_path).get([ids[i] for i in order])
    assert set(cached) == set(on_the_fly) == {"whisper", "tagging"}
    assert torch.equal(cached["whisper"].lengths, on_the_fly["whisper"].lengths)
    assert cached["tagging"].lengths is None
    for key in cached:
        assert cached[key].values.dtype == torch.float32
        torch.testing.assert_close(cached[key].values, on_the_fly[key].values, atol=2e-3, rtol=2e-3)


def test_shards_are_float16_safetensors_keyed_by_target_and_utterance(tmp_path, an4):
    ids, utterances = an4
    with TargetCacheWriter(tmp_path, shard_size=5) as writer:
        extract_targets([LoudnessTeacher()], batches_of(ids, utterances, 4), writer)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "index-rank00000.json",
        "targets-rank00000-000000.safetensors",
        "targets-rank00000-000001.safetensors",
    ]
    with target_cache.safe_open(str(tmp_path / "targets-rank00000-000000.safetensors"), framework="pt") as shard:
        first = shard.get_tensor(f"whisper/{ids[0]}")
    assert first.dtype == torch.float16
    assert first.shape == (int(student_num_frames(torch.tensor(len(utterances[0])))), 2)


def test_rerun_skips_utterances_already_written(tmp_path, an4):
    ids, utterances = an4
    with TargetCacheWriter(tmp_path, shard_size=2) as writer:
        extract_targets([LoudnessTeacher()], batches_of(ids[:5], utterances[:5], 2), writer)
    teacher = LoudnessTeacher()
    with TargetCacheWriter(tmp_path, shard_size=2) as writer:
        assert extract_targets([teacher], batches_of(ids, utterances, 3), writer) == 3
    assert teacher.utterances_seen == 3
    assert sorted(stored_ids(tmp_path)) == sorted(ids)


def test_resume_after_interruption_has_no_duplicates_or_gaps(tmp_path, an4):
    ids, utterances = an4

    def interrupted_batches():
        yield from batches_of(ids[:5], utterances[:5], 1)
        raise KeyboardInterrupt  # the job is killed with one shard written and two utterances buffered

    with pytest.raises(KeyboardInterrupt), TargetCacheWriter(tmp_path, shard_size=3) as writer:
        extract_targets([LoudnessTeacher()], interrupted_batches(), writer)
    (tmp_path / "targets-rank00000-000001.safetensors.tmp").write_bytes(b"half a shard")
    assert sorted(stored_ids(tmp_path)) == sorted(ids[:3])

    teacher = LoudnessTeacher()
    with TargetCacheWriter(tmp_path, shard_size=3) as writer:
        extract_targets([teacher], batches_of(ids, utterances, 2), writer)
    assert teacher.utterances_seen == 5
    assert sorted(stored_ids(tmp_path)) == sorted(ids)  # each id exactly once
    assert not list(tmp_path.glob("*.tmp"))
    cache = TargetCache(tmp_path)
    assert len(cache) == 8
    expected = compute_targets([LoudnessTeacher()], *next(batches_of(ids, utterances, 8))[1:])
    torch.testing.assert_close(cache.get(ids)["whisper"].values, expected["whisper"].values, atol=1e-3, rtol=1e-3)


def test_an_interrupted_shard_write_leaves_no_partial_shard(tmp_path, an4, monkeypatch):
    ids, utterances = an4

    def dies_half_way(tensors, path, metadata):
        Path(path).write_bytes(b"half a shard")
        raise KeyboardInterrupt

    monkeypatch.setattr(target_cache, "save_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt), TargetCacheWriter(tmp_path, shard_size=2) as writer:
        extract_targets([LoudnessTeacher()], batches_of(ids, utterances, 2), writer)
    assert not list(tmp_path.glob("*.safetensors"))
    monkeypatch.undo()
    TargetCacheWriter(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_shard_renamed_but_not_indexed_counts_as_written(tmp_path, an4, monkeypatch):
    ids, utterances = an4

    def dies_before_indexing(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(TargetCacheWriter, "_write_index", dies_before_indexing)
    with pytest.raises(KeyboardInterrupt), TargetCacheWriter(tmp_path, shard_size=2) as writer:
        extract_targets([LoudnessTeacher()], batches_of(ids, utterances, 2), writer)
    monkeypatch.undo()
    assert len(TargetCache(tmp_path)) == 2
    teacher = LoudnessTeacher()
    with TargetCacheWriter(tmp_path, shard_size=2) as writer:
        extract_targets([teacher], batches_of(ids, utterances, 2), writer)
    assert teacher.utterances_seen == 6
    assert sorted(stored_ids(tmp_path)) == sorted(ids)


def test_each_rank_writes_its_own_shards_and_the_reader_merges_them(tmp_path, an4):
    ids, utterances = an4
    for rank in (0, 1):
        with TargetCacheWriter(tmp_path, rank=rank, shard_size=2) as writer:
            extract_targets([LoudnessTeacher()], batches_of(ids[rank::2], utterances[rank::2], 2), writer)
    assert len(list(tmp_path.glob("targets-rank00000-*.safetensors"))) == 2
    assert len(list(tmp_path.glob("targets-rank00001-*.safetensors"))) == 2
    cache = TargetCache(tmp_path)
    assert sorted(cache.ids) == sorted(ids)
    assert cache.get(ids[:3])["whisper"].values.shape[0] == 3


def test_an_id_written_by_two_ranks_is_reported(tmp_path, an4):
    ids, utterances = an4
    writers = [TargetCacheWriter(tmp_path, rank=rank) for rank in (0, 1)]  # both open before either writes
    for writer in writers:
        extract_targets([LoudnessTeacher()], batches_of(ids[:2], utterances[:2], 2), writer)
        writer.close()
    with pytest.raises(ValueError, match=rf"{ids[0]!r} is in both targets-rank00000-000000.*rank00001"):
        TargetCache(tmp_path)


def test_a_cache_refuses_targets_of_another_width(tmp_path, an4):
    ids, utterances = an4
    with TargetCacheWriter(tmp_path) as writer:
        extract_targets([LoudnessTeacher()], batches_of(ids[:2], utterances[:2], 2), writer)
    wider = TeacherTargets(torch.zeros(1, 4, 3), torch.tensor([4]))
    with pytest.raises(ValueError, match="target 'whisper' is stored as .*dim=2.*dim=3"):
        TargetCacheWriter(tmp_path).add([ids[5]], {"whisper": wider})


def test_get_names_ids_that_are_not_cached(tmp_path, an4):
    ids, utterances = an4
    with TargetCacheWriter(tmp_path) as writer:
        extract_targets([LoudnessTeacher()], batches_of(ids[:2], utterances[:2], 2), writer)
    with pytest.raises(KeyError, match="not-extracted"):
        TargetCache(tmp_path).get([ids[0], "not-extracted"])


def test_compute_targets_refuses_two_teachers_for_one_target(an4):
    _, waveforms, lengths = next(batches_of(*an4, 2))
    with pytest.raises(ValueError, match="two teachers produce the 'whisper' target"):
        compute_targets([LoudnessTeacher(), LoudnessTeacher()], waveforms, lengths)
