"""HGRN-Bit checkpoints in the released Hugging Face layout: read, validate, write.

A checkpoint is a directory holding

* ``config.json``: the released ``HGRNBitConfig`` keys
  (:class:`mmfree.golden.hgrn_bit.HGRNBitConfig` validates them);
* the weights, either ``model.safetensors`` or a sharded set: ``model.safetensors.index.json``
  (``{"metadata": {...}, "weight_map": {tensor name: shard file}}``) plus the shard files it
  names; tensors in F32, F16 or BF16 under their official names
  (:meth:`HGRNBitConfig.tensor_shapes`);
* optionally a tokenizer: ``tokenizer.json`` (read with the ``tokenizers`` package), or
  sentencepiece's ``tokenizer.model`` when the ``sentencepiece`` package is installed (it is
  not a dependency). Without one, token ids must be given directly.

Reading (:func:`open_checkpoint`) validates everything before any weight is used: a missing
or malformed ``config.json``, a configuration the model cannot run, missing weight or shard
files, a broken safetensors header, an index that disagrees with its shards, a missing, extra
or mis-shaped tensor, or an unsupported dtype each raise :class:`CheckpointError` with one
line naming the file and the key. The safetensors package validates each file and reports
names, dtypes and shapes; the tensors are then memory-mapped at the offsets the header
gives (numpy has no bfloat16, so BF16 tensors are mapped as ``uint16`` and widened to
float32 block by block: :class:`Bf16Array`).

:meth:`Checkpoint.load_model` turns the checkpoint into a
:class:`~mmfree.golden.hgrn_bit.HGRNBitModel`: each matrix is mapped, quantised to int8
ternary codes plus one scale (:func:`~mmfree.golden.hgrn_bit.quantise_ternary`) and unmapped
again, so the resident memory is the codes (one byte per weight) plus the embedding rows
actually used; the embeddings stay memory-mapped. NaN or infinity in a tensor is rejected
with its name (embedding rows when they are used).

:func:`write_checkpoint` writes the same layout (single file or shards named
``model-00001-of-0000N.safetensors``, metadata ``{"format": "pt"}`` as ``transformers``
writes it), one shard in memory at a time.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .golden.hgrn_bit import ConfigError, HGRNBitConfig, HGRNBitModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_MODEL = "tokenizer.model"

#: safetensors dtype -> (numpy dtype of the mapped data, bytes per element, writer's name)
DTYPES: dict[str, tuple[str, int, str]] = {
    "F32": ("<f4", 4, "float32"),
    "F16": ("<f2", 2, "float16"),
    "BF16": ("<u2", 2, "bfloat16"),
}
_WRITE_DTYPES = {v[2]: k for k, v in DTYPES.items()}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the key."""


# --- bfloat16 ------------------------------------------------------------------------------------


def bf16_to_float32(bits: npt.ArrayLike) -> np.ndarray:
    """bfloat16 bit patterns (``uint16``) to float32 (exact: bf16 is float32's top half)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16(values: npt.ArrayLike) -> np.ndarray:
    """float32 to bfloat16 bit patterns, rounding to nearest, ties to even (as PyTorch);
    NaN stays NaN."""
    u = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    nan = np.isnan(u.view(np.float32))
    return np.where(nan, ((u >> 16) | np.uint32(0x40)).astype(np.uint16), rounded)


class Bf16Array:
    """A memory-mapped BF16 tensor that slices like a float32 array: ``a[i]``, ``a[r0:r1]``
    return float32 copies of just those elements."""

    def __init__(self, bits: np.ndarray) -> None:
        self.bits = bits

    @property
    def shape(self) -> tuple[int, ...]:
        return self.bits.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def __getitem__(self, index: Any) -> np.ndarray:
        return bf16_to_float32(self.bits[index])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = bf16_to_float32(self.bits)
        return out if dtype is None else out.astype(dtype)


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: file, dtype, shape and the absolute byte offset of its data."""

    file: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype][1]

    def map(self) -> np.ndarray | Bf16Array:
        """A read-only memory map of the tensor (BF16 wrapped in :class:`Bf16Array`)."""
        np_dtype = DTYPES[self.dtype][0]
        if math.prod(self.shape) == 0:
            arr = np.zeros(self.shape, dtype=np_dtype)
        else:
            arr = np.memmap(self.file, dtype=np_dtype, mode="r", offset=self.offset,
                            shape=self.shape)
        return Bf16Array(arr) if self.dtype == "BF16" else arr


class _LazyTensors(Mapping[str, Any]):
    """Tensors mapped on access and unmapped when the caller drops them (so a model's
    matrices are never all resident at once)."""

    def __init__(self, infos: Mapping[str, TensorInfo]) -> None:
        self._infos = infos

    def __getitem__(self, name: str) -> np.ndarray | Bf16Array:
        return self._infos[name].map()

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)


class TextTokenizer:
    """Text <-> token ids through the checkpoint's tokenizer (``encode`` adds what the
    tokenizer's own post-processor adds, e.g. Llama's ``<s>``)."""

    def __init__(self, source: str, encode: Callable[[str], list[int]],
                 decode: Callable[[list[int]], str]) -> None:
        self.source = source
        self._encode, self._decode = encode, decode

    def encode(self, text: str) -> list[int]:
        return list(self._encode(text))

    def decode(self, ids: list[int]) -> str:
        return self._decode(list(ids))


def _load_tokenizer(path: Path, config: HGRNBitConfig) -> tuple[TextTokenizer | None, str]:
    """The tokenizer and a one-line note on where it came from (or why there is none)."""
    tj, tm = path / TOKENIZER_JSON, path / TOKENIZER_MODEL
    if tj.is_file():
        from tokenizers import Tokenizer
        try:
            tok = Tokenizer.from_file(str(tj))
        except Exception as e:  # the Rust side raises a bare Exception on bad files
            raise CheckpointError(f"{tj}: not a readable tokenizer.json "
                                  f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                                  ) from None
        return TextTokenizer(
            TOKENIZER_JSON, lambda s: tok.encode(s).ids,
            lambda ids: tok.decode(ids, skip_special_tokens=True)), TOKENIZER_JSON
    if tm.is_file():
        try:
            import sentencepiece  # type: ignore[import-not-found]
        except ImportError:
            return None, (f"{TOKENIZER_MODEL} needs the sentencepiece package "
                          "(pip install sentencepiece); give token ids instead")
        try:
            sp = sentencepiece.SentencePieceProcessor(model_file=str(tm))
        except Exception as e:
            raise CheckpointError(f"{tm}: not a readable sentencepiece model ({e})") from None
        bos = [config.bos_token_id] if config.bos_token_id is not None else []
        return TextTokenizer(TOKENIZER_MODEL, lambda s: bos + sp.encode(s),
                             lambda ids: sp.decode(ids)), TOKENIZER_MODEL
    return None, f"no {TOKENIZER_JSON} or {TOKENIZER_MODEL}; give token ids instead"


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e.msg}, line {e.lineno} column "
                              f"{e.colno})") from None


def _scan_file(file: Path) -> dict[str, TensorInfo]:
    """Every tensor of one safetensors file, validated by the safetensors package; data
    offsets from the header (8-byte little-endian length, then the JSON header)."""
    from safetensors import SafetensorError, safe_open
    if not file.is_file():
        raise CheckpointError(f"{file}: missing")
    try:
        with safe_open(file, framework="numpy") as f:
            names = list(f.keys())
            specs = {n: (f.get_slice(n).get_dtype(), tuple(f.get_slice(n).get_shape()))
                     for n in names}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file}: not a valid safetensors file ({e})") from None
    with open(file, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(header_len))
    base = 8 + header_len
    out = {}
    for name in names:
        dtype, shape = specs[name]
        if dtype not in DTYPES:
            raise CheckpointError(f"{file.name}: tensor {name} has dtype {dtype}; supported: "
                                  f"{', '.join(DTYPES)}")
        out[name] = TensorInfo(file, dtype, shape, base + int(header[name]["data_offsets"][0]))
    return out


def _scan_index(path: Path) -> dict[str, TensorInfo]:
    index_file = path / INDEX_NAME
    index = _read_json(index_file)
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise CheckpointError(f"{index_file}: needs a 'weight_map' object (tensor name -> "
                              "shard file)")
    weight_map = index["weight_map"]
    shards: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        if (not isinstance(shard, str) or not shard or Path(shard).name != shard
                or shard in (".", "..")):
            raise CheckpointError(f"{index_file}: weight_map[{name!r}] = {shard!r} is not a "
                                  "file name in the checkpoint folder")
        shards.setdefault(shard, []).append(name)
    out: dict[str, TensorInfo] = {}
    for shard in sorted(shards):
        file = path / shard
        if not file.is_file():
            raise CheckpointError(f"{index_file}: shard {shard} (holding "
                                  f"{shards[shard][0]}) is missing")
        found = _scan_file(file)
        for name in shards[shard]:
            if name not in found:
                raise CheckpointError(f"{shard}: tensor {name} is missing (the index puts "
                                      "it there)")
        for name in found:
            if weight_map.get(name) != shard:
                where = (f"the index puts it in {weight_map[name]}" if name in weight_map
                         else "the index does not list it")
                raise CheckpointError(f"{shard}: tensor {name} is unexpected ({where})")
            out[name] = found[name]
    return out


@dataclass
class Checkpoint:
    """A validated checkpoint directory (:func:`open_checkpoint`)."""

    path: Path
    config: HGRNBitConfig
    tensors: dict[str, TensorInfo]
    tokenizer: TextTokenizer | None
    tokenizer_note: str

    @property
    def dtypes(self) -> list[str]:
        """The tensor dtypes present, e.g. ``["BF16"]``."""
        return sorted({t.dtype for t in self.tensors.values()})

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    def tensor(self, name: str) -> np.ndarray | Bf16Array:
        """A memory map of one tensor (float32/float16 array, or :class:`Bf16Array`)."""
        return self.tensors[name].map()

    def load_model(self, progress: Callable[[int, int], None] | None = None) -> HGRNBitModel:
        """The model, with every BitLinear quantised to int8 codes + one scale; ``progress``
        is called with (matrices done, total)."""
        try:
            return HGRNBitModel.from_tensors(self.config, _LazyTensors(self.tensors),
                                             progress=progress)
        except ValueError as e:
            raise CheckpointError(f"{self.path}: {e}") from None


def open_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint directory (module docstring); nothing is quantised."""
    root = Path(path)
    if not root.is_dir():
        why = "a file, not a folder" if root.exists() else "no such directory"
        raise CheckpointError(f"{root}: not a checkpoint folder ({why})")
    cfg_file = root / CONFIG_NAME
    if not cfg_file.is_file():
        raise CheckpointError(f"{cfg_file}: missing")
    try:
        config = HGRNBitConfig.from_dict(_read_json(cfg_file))
    except ConfigError as e:
        raise CheckpointError(f"{cfg_file}: {e}") from None
    if (root / WEIGHTS_NAME).is_file():
        tensors = _scan_file(root / WEIGHTS_NAME)
    elif (root / INDEX_NAME).is_file():
        tensors = _scan_index(root)
    else:
        other = [n for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")
                 if (root / n).exists()]
        raise CheckpointError(
            f"{root}: no {WEIGHTS_NAME} or {INDEX_NAME}"
            + (f" ({other[0]} is not read: convert it to safetensors)" if other else ""))
    want = config.tensor_shapes()
    for name, shape in want.items():
        if name not in tensors:
            raise CheckpointError(f"{root}: tensor {name} is missing (shape {list(shape)})")
        if tensors[name].shape != shape:
            raise CheckpointError(f"{tensors[name].file.name}: tensor {name} has shape "
                                  f"{list(tensors[name].shape)}, the config needs {list(shape)}")
    for name, info in tensors.items():
        if name not in want and not (name == "lm_head.weight" and config.tie_word_embeddings):
            raise CheckpointError(f"{info.file.name}: tensor {name} is unexpected (not part "
                                  "of an HGRN-Bit model with this config)")
    tokenizer, note = _load_tokenizer(root, config)
    return Checkpoint(root, config, tensors, tokenizer, note)


# --- writing -------------------------------------------------------------------------------------


def _serialize(tensors: dict[str, tuple[str, np.ndarray]], file: Path) -> None:
    """Write one safetensors file with the safetensors package (any of its API versions);
    ``tensors`` maps names to (dtype name such as ``bfloat16``, raw little-endian data)."""
    import safetensors
    spec_cls = getattr(safetensors, "TensorSpec", None)
    keep = {n: np.ascontiguousarray(a) for n, (_, a) in tensors.items()}
    if spec_cls is not None:
        specs = {n: spec_cls(dtype=dt, shape=list(keep[n].shape), data_ptr=keep[n].ctypes.data,
                             data_len=keep[n].nbytes) for n, (dt, _) in tensors.items()}
    else:  # safetensors < 0.8: plain dictionaries
        specs = {n: {"dtype": dt, "shape": list(keep[n].shape),
                     "data": keep[n].tobytes()} for n, (dt, _) in tensors.items()}
    safetensors.serialize_file(specs, str(file), metadata={"format": "pt"})


def _encode(arr: npt.ArrayLike, dtype: str) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float32)
    if dtype == "bfloat16":
        return float32_to_bf16(a)
    return a.astype("<f2" if dtype == "float16" else "<f4")


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _atomic_write_text(file: Path, text: str) -> None:
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, file)


def write_checkpoint(path: str | os.PathLike, config: HGRNBitConfig,
                     tensors: Mapping[str, npt.ArrayLike] | Callable[[str], npt.ArrayLike],
                     dtype: str = "float32", shard_bytes: int | None = None,
                     tokenizer: Any = None) -> list[Path]:
    """Write a checkpoint in the released layout; returns the files written.

    ``tensors`` gives every tensor of :meth:`HGRNBitConfig.tensor_shapes` by name (a mapping,
    or a function called once per name, so a large model can be generated shard by shard).
    ``dtype``: ``float32``, ``float16`` or ``bfloat16``. ``shard_bytes``: split into shards of
    at most that size (each tensor whole) with an index; ``None`` writes one
    ``model.safetensors``. ``tokenizer``: a ``tokenizers.Tokenizer`` (saved as
    ``tokenizer.json``), a JSON string, or ``None``. Every file is written under a temporary
    name and renamed, so an interrupted write leaves no half file under a real name."""
    if dtype not in _WRITE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_WRITE_DTYPES)}, got {dtype!r}")
    get = tensors.__getitem__ if isinstance(tensors, Mapping) else tensors
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    shapes = config.tensor_shapes()
    size = DTYPES[_WRITE_DTYPES[dtype]][1]
    # plan the shards from the shapes, before any data exists
    plan: list[list[str]] = [[]]
    used = 0
    for name, shape in shapes.items():
        nbytes = math.prod(shape) * size
        if shard_bytes is not None and plan[-1] and used + nbytes > shard_bytes:
            plan.append([])
            used = 0
        plan[-1].append(name)
        used += nbytes
    if shard_bytes is None:
        files = [WEIGHTS_NAME]
    else:
        files = [f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors" for i in range(len(plan))]
    written = []
    for names, fname in zip(plan, files, strict=True):
        data = {}
        for name in names:
            arr = np.asarray(get(name))
            if arr.shape != shapes[name]:
                raise ValueError(f"{name}: shape {arr.shape}, the config needs {shapes[name]}")
            data[name] = (dtype, _encode(arr, dtype))
        fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{fname}.", suffix=".tmp")
        os.close(fd)
        try:
            _serialize(data, Path(tmp))
            os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would create it
            os.replace(tmp, root / fname)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        written.append(root / fname)
        del data
    if shard_bytes is not None:
        index = {"metadata": {"total_size": sum(math.prod(s) * size for s in shapes.values())},
                 "weight_map": {n: f for names, f in zip(plan, files, strict=True)
                                for n in names}}
        _atomic_write_text(root / INDEX_NAME, json.dumps(index, indent=2) + "\n")
        written.append(root / INDEX_NAME)
    meta = config.to_dict() | {"torch_dtype": dtype}
    _atomic_write_text(root / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    written.append(root / CONFIG_NAME)
    if tokenizer is not None:
        text = tokenizer if isinstance(tokenizer, str) else tokenizer.to_str(pretty=True)
        _atomic_write_text(root / TOKENIZER_JSON, text if text.endswith("\n") else text + "\n")
        written.append(root / TOKENIZER_JSON)
    return written
