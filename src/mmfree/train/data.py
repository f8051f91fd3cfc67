"""The training corpus (CPython's help topics), its held-out split, and the tokenizer.

The corpus is ``pydoc_data.topics.topics``: the text that ``help("TOPIC")`` prints, shipped
with every CPython (about 465 KB of English prose and code for 3.11). Its exact content
depends on the Python version, so its SHA-256 is recorded with every checkpoint.

Split: the topics sorted by name; every ``holdout_every``-th topic (indices
``holdout_every - 1, 2 * holdout_every - 1, ...``) is held out, so the held-out text is whole
documents the model never trains on. Each document is tokenised on its own and starts with
``<s>`` (id 1), as the tokenizer's post-processor adds it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SPECIALS = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2: the Llama convention of the released config


@dataclass(frozen=True)
class Corpus:
    """Train and held-out documents (topic name, text)."""

    train: list[tuple[str, str]]
    heldout: list[tuple[str, str]]
    sha256: str

    @property
    def train_bytes(self) -> int:
        return sum(len(t.encode()) for _, t in self.train)

    @property
    def heldout_bytes(self) -> int:
        return sum(len(t.encode()) for _, t in self.heldout)


def load_corpus(holdout_every: int = 10) -> Corpus:
    """The help topics, split into train and held-out documents (see module doc)."""
    if holdout_every < 2:
        raise ValueError(f"holdout_every must be >= 2, not {holdout_every}")
    from pydoc_data.topics import topics

    names = sorted(topics)
    h = hashlib.sha256()
    for n in names:
        h.update(n.encode() + b"\0" + topics[n].encode() + b"\0")
    train, heldout = [], []
    for k, n in enumerate(names):
        (heldout if k % holdout_every == holdout_every - 1 else train).append((n, topics[n]))
    return Corpus(train, heldout, h.hexdigest())


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE (GPT-2 style pre-tokenisation) with ``<unk> <s> </s>`` at ids 0-2.

    ``vocab_size`` 259 gives the plain byte-level tokenizer (256 bytes, no merges). Encoding
    adds ``<s>`` in front, as the Llama ``tokenizer.json`` of the released checkpoints does.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    if vocab_size < 256 + len(SPECIALS):
        raise ValueError(f"vocab_size must be >= {256 + len(SPECIALS)}, not {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tok


def encode_docs(tok: Tokenizer, docs: list[tuple[str, str]]) -> list[np.ndarray]:
    """Token ids of each document, ``<s>`` first, int32."""
    return [np.asarray(e.ids, np.int32) for e in tok.encode_batch([t for _, t in docs])]


def token_bytes(tok: Tokenizer) -> np.ndarray:
    """UTF-8 bytes each token id stands for (0 for the special tokens), for bits per byte."""
    vocab = tok.get_vocab()
    out = np.zeros(tok.get_vocab_size(), np.int64)
    for piece, i in vocab.items():
        if piece in SPECIALS:
            continue
        # ByteLevel maps each byte to one printable character; count the bytes, not the text.
        out[i] = len(piece)
    return out


class Batches:
    """Random training windows of ``seq_len + 1`` tokens from the concatenated documents.

    One numpy generator seeded once: the same seed gives the same batches on every machine.
    """

    def __init__(self, docs: list[np.ndarray], seq_len: int, batch: int, seed: int) -> None:
        self.stream = np.concatenate(docs)
        if len(self.stream) < seq_len + 2:
            raise ValueError(f"corpus of {len(self.stream)} tokens is shorter than seq_len")
        self.seq_len, self.batch = seq_len, batch
        self.rng = np.random.default_rng(seed)

    def __next__(self) -> np.ndarray:
        starts = self.rng.integers(0, len(self.stream) - self.seq_len - 1, self.batch)
        return np.stack([self.stream[s:s + self.seq_len + 1] for s in starts])


def eval_windows(docs: list[np.ndarray], seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out windows: each document cut into consecutive pieces of ``seq_len + 1`` tokens
    overlapping by one (every token after ``<s>`` is predicted exactly once, from at most
    ``seq_len`` tokens of its own document and a zero recurrent state at each window start).

    Returns (windows (n, seq_len + 1), mask (n, seq_len)) with the last window of each document
    right-padded and masked.
    """
    wins, masks = [], []
    for ids in docs:
        for s in range(0, len(ids) - 1, seq_len):
            piece = ids[s:s + seq_len + 1]
            n = len(piece) - 1
            w = np.zeros(seq_len + 1, np.int32)
            w[:len(piece)] = piece
            m = np.zeros(seq_len, bool)
            m[:n] = True
            wins.append(w)
            masks.append(m)
    return np.stack(wins), np.stack(masks)
