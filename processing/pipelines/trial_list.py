"""Reading speaker-verification trial lists."""

from dataclasses import dataclass
from pathlib import Path

_TARGET_LABELS = {"1": True, "target": True, "0": False, "nontarget": False}


@dataclass(frozen=True)
class Trial:
    """One verification trial: is the test utterance from the enrolment utterance's speaker?"""

    enrollment: str
    test: str
    is_target: bool


def read_trial_list(path: str | Path) -> list[Trial]:
    """Read a trial list: one `enrolment test label` line per trial.

    The label is 1/0 or target/nontarget (Kaldi). VoxCeleb's own order, `label enrolment test`
    (e.g. `1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav`), is recognised by a
    label in the first field and none in the last. Blank lines and lines starting with "#" are
    skipped.
    """
    trials = []
    with open(path, encoding="utf-8") as trial_file:
        for line_number, line in enumerate(trial_file, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) != 3:
                raise ValueError(
                    f"{path}:{line_number}: expected 3 fields 'enrolment test label'; got {line.strip()!r}"
                )
            if fields[2].lower() in _TARGET_LABELS:
                enrollment, test, label = fields
            elif fields[0].lower() in _TARGET_LABELS:
                label, enrollment, test = fields
            else:
                raise ValueError(
                    f"{path}:{line_number}: no label (1/0 or target/nontarget) in the first or last "
                    f"field of {line.strip()!r}"
                )
            trials.append(Trial(enrollment, test, _TARGET_LABELS[label.lower()]))
    if not trials:
        raise ValueError(f"{path} holds no trials; expected lines 'enrolment test label'")
    return trials
