"""The frame-encoder teacher: any AutoModel encoder's frames as the stage-1 ASR target (the demo's ASR teacher)."""

import pytest
import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDModel
from processing_mt2kd import MT2KDFeatureExtractor, load_audio
from training_mt2kd.recipe.config import config_from_dict
from training_mt2kd.recipe.kd import load_teachers
from training_mt2kd.recipe.teachers import FrameEncoderTeacher, load_teacher, student_num_frames

from .conftest import DATA_DIR

UTTERANCES = ["an4/wav/fash/an253-fash-b.wav", "fsdd/recordings/0_george_0.wav"]


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("encoder")
    MT2KDModel(MT2KDConfig.from_preset("mt2kd-tiny")).save_pretrained(folder)
    MT2KDFeatureExtractor().save_pretrained(folder)
    return folder


def waveforms() -> tuple[torch.Tensor, torch.Tensor]:
    """Two real utterances of different lengths, zero-padded: (batch, samples) and lengths."""
    audio = [torch.from_numpy(load_audio(DATA_DIR / path)[0]) for path in UTTERANCES]
    return nn.utils.rnn.pad_sequence(audio, batch_first=True), torch.tensor([len(a) for a in audio])


def test_targets_are_the_encoders_own_frames_at_the_students_frame_count(encoder_folder):
    teacher = load_teacher("frame-encoder", str(encoder_folder))
    batch, lengths = waveforms()
    targets = teacher(batch, lengths)
    assert teacher.target_key == "whisper"
    assert targets.lengths.tolist() == student_num_frames(lengths).tolist()
    model, extractor = MT2KDModel.from_pretrained(encoder_folder).eval(), MT2KDFeatureExtractor()
    for index, length in enumerate(lengths.tolist()):
        alone = extractor(batch[index, :length].numpy(), sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            frames = model(alone["input_features"], alone["attention_mask"]).last_hidden_state[0]
        valid = int(targets.lengths[index])
        torch.testing.assert_close(targets.values[index, :valid], frames[:valid], rtol=1e-4, atol=1e-4)
        assert not targets.values[index, valid:].any()


def test_grouped_frames_stack_into_one_wider_target(encoder_folder):
    batch, lengths = waveforms()
    single = load_teacher("frame-encoder", str(encoder_folder))(batch, lengths)
    paired = load_teacher("frame-encoder", str(encoder_folder), frames_per_student_frame=2)(batch, lengths)
    assert paired.values.shape[-1] == 2 * single.values.shape[-1]
    assert paired.lengths.tolist() == single.lengths.tolist()


def test_stage1_config_selects_the_frame_encoder_for_the_asr_target(encoder_folder):
    config = config_from_dict({"teachers": {"whisper": {"kind": "frame-encoder", "name_or_path": str(encoder_folder)}}})
    (teacher,) = load_teachers(config, ["Speech"], torch.device("cpu"))
    assert isinstance(teacher, FrameEncoderTeacher)


class _EncoderWithoutMask(nn.Module):
    def __init__(self):
        super().__init__()
        self.projection = nn.Linear(80, 8)

    def forward(self, input_features, attention_mask=None):
        return BaseModelOutput(last_hidden_state=self.projection(input_features))


def test_an_encoder_without_an_output_mask_is_refused_with_the_reason():
    teacher = FrameEncoderTeacher(_EncoderWithoutMask(), MT2KDFeatureExtractor())
    batch, lengths = waveforms()
    with pytest.raises(ValueError, match="no output attention_mask"):
        teacher(batch, lengths)
