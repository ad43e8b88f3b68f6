"""Read CTranslate2's `model.bin` (binary version 6) into numpy arrays, without the ctranslate2 package.

The layout, all little-endian: u32 binary version, string spec name, u32 spec revision, u32 number
of variables, then per variable: string name, u8 rank, u32 per dimension, u8 data type, u32 byte
count, raw bytes; finally u32 number of aliases and (string alias, string target) pairs. A string
is a u16 length that counts a trailing NUL, then the UTF-8 bytes and the NUL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUPPORTED_BINARY_VERSION = 6
DATA_TYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
}
"""CTranslate2's data type ids (its `DataType` enum order) → numpy; bfloat16 (5) is not read."""


@dataclass(frozen=True)
class CTranslate2Model:
    """The contents of one `model.bin`.

    Attributes:
        spec_name: the model specification, e.g. "WhisperSpec".
        spec_revision: its revision number.
        variables: variable name (e.g. "encoder/conv1/weight") → array; scalars are 0-d arrays.
        aliases: alias name → the variable it stands for (e.g. a tied output projection).
    """

    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.offset = data, path, 0

    def take(self, num_bytes: int) -> bytes:
        if self.offset + num_bytes > len(self.data):
            raise ValueError(
                f"{self.path} ends after {len(self.data)} bytes, in the middle of a record at byte {self.offset}; "
                "the file is truncated or not a CTranslate2 model.bin"
            )
        chunk = self.data[self.offset : self.offset + num_bytes]
        self.offset += num_bytes
        return chunk

    def number(self, code: str) -> int:
        return struct.unpack("<" + code, self.take(struct.calcsize(code)))[0]

    def string(self) -> str:
        # The stored length counts the trailing NUL.
        return self.take(self.number("H"))[:-1].decode("utf-8")


def read_ctranslate2_model(path: str | Path) -> CTranslate2Model:
    """Read a CTranslate2 `model.bin` (a file, or the model folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    reader = _Reader(path.read_bytes(), path)
    version = reader.number("I")
    if version != SUPPORTED_BINARY_VERSION:
        raise ValueError(
            f"{path} has CTranslate2 binary version {version}; this reader understands version "
            f"{SUPPORTED_BINARY_VERSION} (CTranslate2 >= 3); re-convert the model with a current CTranslate2"
        )
    spec_name = reader.string()
    spec_revision = reader.number("I")
    variables = {}
    for _ in range(reader.number("I")):
        name = reader.string()
        shape = tuple(reader.number("I") for _ in range(reader.number("B")))
        type_id = reader.number("B")
        num_bytes = reader.number("I")
        if type_id not in DATA_TYPES:
            raise ValueError(
                f"{path}: variable {name!r} has CTranslate2 data type {type_id}, which this reader does not "
                f"support (it reads {sorted(DATA_TYPES)}: float32, int8, int16, int32, float16)"
            )
        dtype = DATA_TYPES[type_id]
        if num_bytes != dtype.itemsize * int(np.prod(shape)):
            raise ValueError(
                f"{path}: variable {name!r} of shape {shape} and type {dtype} should take "
                f"{dtype.itemsize * int(np.prod(shape))} bytes; the file says {num_bytes}"
            )
        variables[name] = np.frombuffer(reader.take(num_bytes), dtype=dtype).reshape(shape).copy()
    aliases = {}
    for _ in range(reader.number("I")):
        alias = reader.string()
        aliases[alias] = reader.string()
    if reader.offset != len(reader.data):
        raise ValueError(f"{path}: {len(reader.data) - reader.offset} unexpected bytes after the aliases")
    return CTranslate2Model(spec_name, spec_revision, variables, aliases)
