"""MT2KDTokenizer: icefall's sentencepiece layout, training, encoding, CTC decoding, offsets and saving."""

import csv

import numpy as np
import pytest
import torch
from transformers import PreTrainedConfig, PreTrainedModel, pipeline
from transformers.modeling_outputs import CausalLMOutput

from processing_mt2kd import MT2KDFeatureExtractor, MT2KDTokenizer, train_bpe_tokenizer

VOCAB_SIZE = 120


@pytest.fixture(scope="module")
def transcripts(data_dir) -> list[str]:
    """Real transcripts of ../shared/data, upper-cased like icefall's LibriSpeech text."""
    texts = []
    for corpus in ("an4", "speech_misc"):
        with open(data_dir / corpus / "metadata.csv", newline="", encoding="utf-8") as file:
            texts += [row["transcript"].upper() for row in csv.DictReader(file) if row["transcript"]]
    return texts


@pytest.fixture(scope="module")
def tokenizer(transcripts, tmp_path_factory) -> MT2KDTokenizer:
    return train_bpe_tokenizer(transcripts, tmp_path_factory.mktemp("bpe"), vocab_size=VOCAB_SIZE)


def test_trained_model_follows_icefall_layout(tokenizer):
    assert tokenizer.convert_ids_to_tokens([0, 1, 2]) == ["<blk>", "<sos/eos>", "<unk>"]
    assert len(tokenizer) == tokenizer.vocab_size == VOCAB_SIZE
    assert tokenizer.blank_token_id == tokenizer.pad_token_id == 0
    assert tokenizer.unk_token_id == 2
    assert tokenizer.bos_token_id == tokenizer.eos_token_id == 1
    assert tokenizer.text_case == "upper"


def test_training_from_a_text_file_equals_training_from_sentences(tokenizer, transcripts, tmp_path):
    text_file = tmp_path / "transcripts.txt"
    text_file.write_text("\n".join(transcripts), encoding="utf-8")

    from_file = train_bpe_tokenizer(text_file, tmp_path / "from_file", vocab_size=VOCAB_SIZE)

    assert from_file.get_vocab() == tokenizer.get_vocab()
    assert (tmp_path / "from_file" / "bpe.model").is_file()


def test_encoding_adds_no_special_tokens(tokenizer):
    ids = tokenizer("HE WAS NOT AN ILL DISPOSED YOUNG MAN").input_ids
    assert ids and not set(ids) & {0, 1, 2}


def test_encode_decode_round_trip(tokenizer, transcripts):
    for text in transcripts[:20]:
        ids = tokenizer(text).input_ids
        assert tokenizer.decode(ids, group_tokens=False) == " ".join(text.split())


def test_text_is_cased_like_the_pieces(tokenizer):
    assert tokenizer("he was not an ill disposed young man").input_ids == tokenizer(
        "HE WAS NOT AN ILL DISPOSED YOUNG MAN"
    ).input_ids


def test_text_case_keep_leaves_text_alone(tokenizer):
    keeping = MT2KDTokenizer(vocab_file=tokenizer.vocab_file, text_case="keep")
    assert tokenizer.unk_token_id in keeping("he was").input_ids  # the pieces are upper case
    assert tokenizer.unk_token_id not in tokenizer("he was").input_ids


def test_mixed_case_model_keeps_case(transcripts, tmp_path):
    mixed = train_bpe_tokenizer(transcripts + [t.lower() for t in transcripts], tmp_path, vocab_size=VOCAB_SIZE)
    assert mixed.text_case == "keep"


def test_ctc_decoding_merges_repeats_and_drops_the_blank(tokenizer):
    hello, world = tokenizer("HELLO").input_ids, tokenizer("WORLD").input_ids
    frames = [0, 0] + [i for token in hello for i in (token, token, token)] + [0] + world + [world[-1], 0, 0]

    assert tokenizer.decode(frames) == "HELLO WORLD"
    assert tokenizer.decode(np.array(frames)) == "HELLO WORLD"
    assert tokenizer.decode(torch.tensor(frames)) == "HELLO WORLD"


def test_ctc_keeps_a_repeat_separated_by_the_blank(tokenizer):
    word = tokenizer.convert_tokens_to_ids("\u2581HE")
    assert tokenizer.decode([word, word, 0, word]) == "HE HE"


def test_group_tokens_false_keeps_repeats(tokenizer):
    word = tokenizer.convert_tokens_to_ids("\u2581HE")
    assert tokenizer.decode([word, word], group_tokens=False) == "HE HE"
    assert tokenizer.decode([word, 0, word], group_tokens=False) == "HE HE"


def test_skip_special_tokens_drops_sos_eos_and_unk(tokenizer):
    word = tokenizer.convert_tokens_to_ids("\u2581HE")
    assert tokenizer.decode([1, word, 2], skip_special_tokens=True) == "HE"
    assert tokenizer.decode([1, word], skip_special_tokens=False) == "<sos/eos> HE"


def test_batch_decode_decodes_each_row(tokenizer):
    rows = [tokenizer("HELLO WORLD").input_ids, tokenizer("YOUNG MAN").input_ids]
    padded = [row + [0] * (12 - len(row)) for row in rows]
    assert tokenizer.batch_decode(padded) == ["HELLO WORLD", "YOUNG MAN"]


def test_offsets_are_frame_spans_of_the_emitted_pieces(tokenizer):
    he, was = tokenizer.convert_tokens_to_ids(["\u2581HE", "\u2581WAS"])
    frames = [0, he, he, 0, 0, was, 0]

    output = tokenizer.decode(frames, output_char_offsets=True, output_word_offsets=True)

    assert output.text == "HE WAS"
    assert "".join(offset["char"] for offset in output.char_offsets) == output.text
    assert output.char_offsets[0] == {"char": "H", "start_offset": 1, "end_offset": 3}
    assert output.char_offsets[2] == {"char": " ", "start_offset": 5, "end_offset": 6}
    assert output.word_offsets == [
        {"word": "HE", "start_offset": 1, "end_offset": 3},
        {"word": "WAS", "start_offset": 5, "end_offset": 6},
    ]


def test_label_padding_in_decode_is_refused_with_the_fix(tokenizer):
    with pytest.raises(ValueError, match=r"-100.*pad_token_id"):
        tokenizer.decode([5, -100])


def test_save_load_round_trip(tokenizer, transcripts, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    assert {"bpe.model", "tokenizer_config.json"} <= {path.name for path in tmp_path.iterdir()}

    reloaded = MT2KDTokenizer.from_pretrained(tmp_path)

    assert reloaded.get_vocab() == tokenizer.get_vocab()
    assert (reloaded.blank_token, reloaded.text_case) == (tokenizer.blank_token, tokenizer.text_case)
    assert reloaded(transcripts[:5]).input_ids == tokenizer(transcripts[:5]).input_ids


def test_loads_an_icefall_lang_folder_holding_only_bpe_model(tokenizer, tmp_path):
    (tmp_path / "bpe.model").write_bytes(open(tokenizer.vocab_file, "rb").read())

    loaded = MT2KDTokenizer.from_pretrained(tmp_path)

    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.blank_token_id == 0


def test_unknown_blank_token_is_refused(tokenizer):
    with pytest.raises(ValueError, match="blank_token='<b>'"):
        MT2KDTokenizer(vocab_file=tokenizer.vocab_file, blank_token="<b>")


def test_vocab_size_too_large_for_the_text_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="lower vocab_size or add text"):
        train_bpe_tokenizer(["ONE TWO THREE"], tmp_path, vocab_size=500)


def test_a_string_that_is_not_a_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not an existing file"):
        train_bpe_tokenizer("HELLO WORLD", tmp_path)


class ScriptedCTCConfig(PreTrainedConfig):
    model_type = "scripted-ctc-test"

    def __init__(self, frame_tokens=(), vocab_size=2, inputs_to_logits_ratio=640, **kwargs):
        self.frame_tokens = list(frame_tokens)
        self.vocab_size = vocab_size
        self.inputs_to_logits_ratio = inputs_to_logits_ratio
        super().__init__(**kwargs)


class ScriptedCTCModel(PreTrainedModel):
    """Emits `config.frame_tokens` as one-hot CTC logits at 25 Hz (4 feature frames per output frame)."""

    config_class = ScriptedCTCConfig
    main_input_name = "input_features"

    def __init__(self, config):
        super().__init__(config)
        self.unused = torch.nn.Parameter(torch.zeros(1))
        self.post_init()

    def forward(self, input_features, attention_mask=None):
        tokens = torch.tensor(self.config.frame_tokens[: input_features.shape[1] // 4])
        return CausalLMOutput(logits=torch.nn.functional.one_hot(tokens, self.config.vocab_size).float()[None])


def test_stock_asr_pipeline_decodes_ctc_through_the_tokenizer(tokenizer):
    he, was = tokenizer.convert_tokens_to_ids(["\u2581HE", "\u2581WAS"])
    frames = [0, 0, he, he, 0, 0, was, was, was] + [0] * 100  # 40 ms per frame
    model = ScriptedCTCModel(ScriptedCTCConfig(frame_tokens=frames, vocab_size=len(tokenizer))).eval()
    asr = pipeline(
        "automatic-speech-recognition", model=model, tokenizer=tokenizer, feature_extractor=MT2KDFeatureExtractor()
    )
    audio = np.random.default_rng(0).uniform(-0.1, 0.1, 32000).astype(np.float32)

    assert asr(audio) == {"text": "HE WAS"}
    words = asr(audio, return_timestamps="word")["chunks"]
    assert words == [
        {"text": "HE", "timestamp": (0.08, 0.16)},
        {"text": "WAS", "timestamp": (0.24, 0.36)},
    ]
    chars = asr(audio, return_timestamps="char")["chunks"]
    assert "".join(chunk["text"] for chunk in chars) == "HE WAS"
