"""The default HGRN-Bit checkpoint shipped with mmfree, and a small random one in the same layout.

:func:`default_path` is ``src/mmfree/data/hgrn-bit-tiny/``: a d 128, 2-layer HGRN-Bit trained
offline by ``python -m mmfree.train`` (docs/training.md), in exactly the released layout
(``config.json``, ``model.safetensors``, ``tokenizer.json``) plus its ``training.json``
provenance. Every command runs with it and no download, through the same loading code a
released checkpoint takes.

:func:`write_tiny` writes a small *random* checkpoint in the same layout, deterministically
(byte-identical files): :data:`TINY_CONFIG` (d 64, 2 layers, MLP width 256 from the released
formula, lower bounds on), BF16 weights from :func:`mmfree.golden.hgrn_bit.random_tensor`
(seed :data:`SEED`), and a Llama-style byte tokenizer (``<unk>`` 0, ``<s>`` 1, ``</s>`` 2,
then the 256 byte tokens ``<0x00>`` .. ``<0xFF>``, a BPE model with byte fallback and no
merges, ``<s>`` prepended by its post-processor: every UTF-8 byte ``b`` is token ``b + 3``).
Tests and benchmarks use it where the weights need not be trained::

    python -m mmfree.tiny_checkpoint DIR
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import write_checkpoint
from .golden.hgrn_bit import HGRNBitConfig, random_tensor

if TYPE_CHECKING:
    from tokenizers import Tokenizer

NAME = "hgrn-bit-tiny"
SEED = 20240602
SPECIALS = ("<unk>", "<s>", "</s>")
TINY_CONFIG = HGRNBitConfig(vocab_size=len(SPECIALS) + 256, hidden_size=64,
                            num_hidden_layers=2)


def default_path() -> Path:
    """The shipped checkpoint's folder inside the installed package."""
    return Path(str(resources.files("mmfree") / "data" / NAME))


def byte_tokenizer() -> Tokenizer:
    """The Llama-style byte tokenizer described in the module docstring."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    vocab.update({f"<0x{b:02X}>": len(SPECIALS) + b for b in range(256)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True))
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def write_tiny(path: str | Path) -> list[Path]:
    """Write the small random checkpoint (module docstring) into ``path``."""
    return write_checkpoint(path, TINY_CONFIG, lambda name: random_tensor(TINY_CONFIG, SEED,
                                                                          name),
                            dtype="bfloat16", tokenizer=byte_tokenizer())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmfree.tiny_checkpoint",
                                description="Write the small random HGRN-Bit checkpoint "
                                            "(d 64, 2 layers, byte tokenizer) into DIR.")
    p.add_argument("dir", help="output folder (created; files in it are replaced)")
    args = p.parse_args(argv)
    for f in write_tiny(Path(args.dir)):
        print(f"{f} ({f.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
