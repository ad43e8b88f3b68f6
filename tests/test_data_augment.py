"""Student-only augmentation: SpecAugment on fbank, noise mixing at a chosen SNR."""

import pytest
import soundfile
import torch

from training_mt2kd.data import DataHealth, NoiseMixer, SpecAugment, decode_waveform

LENGTHS = [200, 120, 50]


def features_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    features = torch.randn(3, 200, 80, generator=torch.Generator().manual_seed(0)) + 5.0
    mask = torch.arange(200)[None, :] < torch.tensor(LENGTHS)[:, None]
    return features, mask.long()


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_spec_augment_masks_only_valid_frames():
    features, mask = features_and_mask()
    augmented = SpecAugment()(features, mask, seeded())
    changed = (augmented != features).any(dim=2)
    assert changed.any()
    assert not (changed & ~mask.bool()).any()


def test_spec_augment_is_identity_when_disabled_or_in_eval():
    features, mask = features_and_mask()
    assert SpecAugment(enabled=False)(features, mask, seeded()) is features
    assert SpecAugment().eval()(features, mask, seeded()) is features


def test_spec_augment_time_masks_scale_with_length():
    features, mask = features_and_mask()
    augment = SpecAugment(num_freq_masks=0, num_time_masks=4, max_time_masked_fraction=0.2)
    for seed in range(20):
        masked_frames = (augment(features, mask, seeded(seed)) != features).all(dim=2).sum(dim=1)
        assert (masked_frames <= torch.tensor(LENGTHS) * 0.2).all()


def test_spec_augment_frequency_masks_respect_their_width():
    features, mask = features_and_mask()
    augment = SpecAugment(num_time_masks=0, num_freq_masks=2, max_freq_mask_bins=10)
    for seed in range(20):
        changed = augment(features, mask, seeded(seed)) != features
        masked_bins = changed[:, 0, :].sum(dim=1)
        assert (masked_bins <= 20).all()
        assert (changed[0] == changed[0, :1]).all()  # a frequency mask covers all of an utterance's frames


def test_spec_augment_fills_with_the_utterance_mean():
    features, mask = features_and_mask()
    augmented = SpecAugment()(features, mask, seeded())
    row = 1
    valid = features[row, : LENGTHS[row]]
    filled = augmented[row][augmented[row] != features[row]]
    assert torch.allclose(filled, valid.mean().expand_as(filled))


def test_spec_augment_is_reproducible_from_the_generator():
    features, mask = features_and_mask()
    augment = SpecAugment()
    assert torch.equal(augment(features, mask, seeded(4)), augment(features, mask, seeded(4)))
    assert not torch.equal(augment(features, mask, seeded(4)), augment(features, mask, seeded(5)))


@pytest.fixture(scope="module")
def speech_and_noise(data_dir) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Two real utterances padded into one batch, and two real noise recordings, all 16 kHz."""
    utterances = [
        decode_waveform(str(data_dir / "an4/wav/fclc" / name)) for name in ("an146-fclc-b.wav", "an147-fclc-b.wav")
    ]
    lengths = torch.tensor([len(u) for u in utterances])
    waveforms = torch.zeros(2, int(lengths.max()))
    for row, utterance in enumerate(utterances):
        waveforms[row, : len(utterance)] = torch.from_numpy(utterance)
    noises = [
        torch.from_numpy(decode_waveform(str(data_dir / "sound_events/esc50" / name)))
        for name in ("3-103051-C-19.wav", "5-156999-C-19.wav")
    ]
    return waveforms, lengths, noises


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return float(10 * torch.log10(clean.double().pow(2).mean() / (noisy - clean).double().pow(2).mean()))


def test_noise_mixer_hits_the_requested_snr(speech_and_noise):
    waveforms, lengths, noises = speech_and_noise
    noisy = NoiseMixer(noises, snr_db_range=(15.0, 15.0))(waveforms, lengths, seeded())
    for row, length in enumerate(lengths.tolist()):
        assert snr_db(waveforms[row, :length], noisy[row, :length]) == pytest.approx(15.0, abs=0.01)


def test_noise_mixer_draws_snr_inside_the_range(speech_and_noise):
    waveforms, lengths, noises = speech_and_noise
    mixer = NoiseMixer(noises, snr_db_range=(10.0, 20.0))
    snrs = [
        snr_db(waveforms[0, : lengths[0]], mixer(waveforms, lengths, seeded(seed))[0, : lengths[0]])
        for seed in range(10)
    ]
    assert all(10.0 - 1e-3 <= value <= 20.0 + 1e-3 for value in snrs)
    assert max(snrs) - min(snrs) > 2.0


def test_noise_mixer_leaves_padding_at_zero(speech_and_noise):
    waveforms, lengths, noises = speech_and_noise
    noisy = NoiseMixer(noises)(waveforms, lengths, seeded())
    shorter = int(lengths.argmin())
    assert noisy[shorter, lengths[shorter] :].abs().sum() == 0


def test_noise_mixer_is_deterministic_from_the_generator(speech_and_noise):
    waveforms, lengths, noises = speech_and_noise
    mixer = NoiseMixer(noises)
    assert torch.equal(mixer(waveforms, lengths, seeded(1)), mixer(waveforms, lengths, seeded(1)))
    assert not torch.equal(mixer(waveforms, lengths, seeded(1)), mixer(waveforms, lengths, seeded(2)))


def test_short_noise_is_repeated_to_cover_the_utterance(speech_and_noise):
    waveforms, lengths, _ = speech_and_noise
    short_noise = torch.randn(1000, generator=seeded())
    noisy = NoiseMixer([short_noise], snr_db_range=(5.0, 5.0))(waveforms, lengths, seeded())
    added = noisy[0, : lengths[0]] - waveforms[0, : lengths[0]]
    assert (added[-1000:].abs() > 0).float().mean() > 0.99
    assert snr_db(waveforms[0, : lengths[0]], noisy[0, : lengths[0]]) == pytest.approx(5.0, abs=0.01)


def test_noise_mixer_with_probability_zero_changes_nothing(speech_and_noise):
    waveforms, lengths, noises = speech_and_noise
    assert torch.equal(NoiseMixer(noises, probability=0.0)(waveforms, lengths, seeded()), waveforms)


def test_undecodable_noise_is_skipped_and_counted(speech_and_noise, tmp_path):
    waveforms, lengths, _ = speech_and_noise
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVE")
    health = DataHealth()
    mixer = NoiseMixer(
        [{"audio": {"bytes": None, "path": str(tmp_path / "broken.wav")}, "id": "broken"}], health=health
    )
    assert torch.equal(mixer(waveforms, lengths, seeded()), waveforms)
    assert health.counts == {"unreadable": 2} and health.ids("unreadable") == ["broken", "broken"]


def test_noise_corpus_examples_are_decoded_on_use(data_dir, speech_and_noise):
    waveforms, lengths, _ = speech_and_noise
    path = data_dir / "sound_events/esc50/3-103051-C-19.wav"
    assert soundfile.info(path).samplerate == 44100
    mixer = NoiseMixer([{"audio": {"bytes": None, "path": str(path)}, "id": "storm"}], snr_db_range=(12.0, 12.0))
    noisy = mixer(waveforms, lengths, seeded())
    assert snr_db(waveforms[1, : lengths[1]], noisy[1, : lengths[1]]) == pytest.approx(12.0, abs=0.01)
