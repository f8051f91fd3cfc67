"""Checkpoint loading: the released Hugging Face layout, written here with the safetensors and
tokenizers packages directly (single file and sharded; F32, F16, BF16), and every rejection."""

import json
import shutil

import numpy as np
import pytest
import safetensors
from safetensors.numpy import save_file

from mmfree.checkpoint import (
    Bf16Array,
    CheckpointError,
    bf16_to_float32,
    float32_to_bf16,
    open_checkpoint,
    write_checkpoint,
)
from mmfree.golden.hgrn_bit import HGRNBitConfig, quantise_ternary, random_tensors
from mmfree.tiny_checkpoint import TINY_CONFIG, default_path, write_tiny

CFG = {"model_type": "hgrn_bit", "architectures": ["HGRNBitForCausalLM"], "vocab_size": 300,
       "hidden_size": 32, "num_hidden_layers": 2, "num_heads": 1, "expand_ratio": 1,
       "use_short_conv": False, "use_lower_bound": True, "hidden_ratio": 4,
       "intermediate_size": None, "hidden_act": "swish", "rms_norm_eps": 1e-6,
       "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
       "torch_dtype": "bfloat16", "transformers_version": "4.40.0"}


def tensors_f32(seed=0):
    """Official names and shapes (listed here, not taken from mmfree), float32 values that
    bf16 and fp16 represent exactly, so every dtype must load the same numbers."""
    rng = np.random.default_rng(seed)
    d, inter, vocab = 32, 256, 300
    shapes = {"model.embeddings.weight": (vocab, d), "model.lower_bounds": (2, d),
              "model.norm.weight": (d,), "lm_head.weight": (vocab, d),
              "lm_head.norm.weight": (d,)}
    for n in range(2):
        p = f"model.layers.{n}."
        shapes |= {p + "attn_norm.weight": (d,), p + "attn.g_norm.weight": (d,),
                   p + "mlp_norm.weight": (d,)}
        for name, shape in (("attn.i_proj", (d, d)), ("attn.f_proj", (d, d)),
                            ("attn.g_proj", (d, d)), ("attn.o_proj", (d, d)),
                            ("mlp.gate_proj", (2 * inter, d)), ("mlp.down_proj", (d, inter))):
            shapes |= {p + name + ".weight": shape, p + name + ".norm.weight": (shape[1],)}
    out = {}
    for name, shape in shapes.items():
        # 8 significant bits: exact in bf16 (8) and fp16 (11)
        v = np.round(rng.normal(1 if len(shape) == 1 else 0, 0.5, shape) * 64) / 64
        out[name] = v.astype(np.float32)
    return out


def bf16_bits(a):
    """float32 -> bf16 bit patterns by truncation (exact for the values above)."""
    return (np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def save_bf16(tensors, path):
    """A BF16 safetensors file through the safetensors package's own serializer."""
    keep = {k: bf16_bits(v) for k, v in tensors.items()}
    specs = {k: safetensors.TensorSpec(dtype="bfloat16", shape=list(v.shape),
                                       data_ptr=v.ctypes.data, data_len=v.nbytes)
             for k, v in keep.items()}
    safetensors.serialize_file(specs, str(path), metadata={"format": "pt"})


def llama_tokenizer():
    """A tiny tokenizer in the Llama layout: <unk> <s> </s>, 256 byte-fallback tokens, a few
    pieces and merges; '▁' for spaces, <s> prepended."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab |= {f"<0x{b:02X}>": 3 + b for b in range(256)}
    pieces = ["▁", "t", "h", "e", "a", "▁t", "he", "▁the", "▁a"]
    vocab |= {p: 259 + i for i, p in enumerate(pieces)}
    merges = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("▁", "a")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                               byte_fallback=True, fuse_unk=True))
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False)
                            for s in ("<unk>", "<s>", "</s>")])
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)])
    return tok


def write_single(path, tensors, dtype="F32", config=CFG, tokenizer=True):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    if dtype == "BF16":
        save_bf16(tensors, path / "model.safetensors")
    else:
        np_dtype = np.float16 if dtype == "F16" else np.float32
        save_file({k: v.astype(np_dtype) for k, v in tensors.items()},
                  path / "model.safetensors", metadata={"format": "pt"})
    if tokenizer:
        llama_tokenizer().save(str(path / "tokenizer.json"))
    return path


def write_sharded(path, tensors, shards=3):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(CFG))
    names = list(tensors)
    weight_map = {}
    for i in range(shards):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[i::shards]}
        save_bf16(part, path / fname)
        weight_map |= {n: fname for n in part}
    llama_tokenizer().save(str(path / "tokenizer.json"))
    (path / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": sum(v.size * 2 for v in tensors.values())},
         "weight_map": weight_map}))
    return path


@pytest.mark.parametrize("layout", ["F32", "F16", "BF16", "sharded-BF16"])
def test_load_every_layout(layout, tmp_path):
    t = tensors_f32()
    if layout == "sharded-BF16":
        write_sharded(tmp_path, t)
    else:
        write_single(tmp_path, t, layout)
    ckpt = open_checkpoint(tmp_path)
    assert ckpt.dtypes == [layout.split("-")[-1]]
    assert ckpt.config.hidden_size == 32 and ckpt.config.intermediate == 256
    emb = ckpt.tensor("model.embeddings.weight")
    assert isinstance(emb, np.memmap) or isinstance(emb.bits, np.memmap)
    assert np.array_equal(np.asarray(emb[5], dtype=np.float32), t["model.embeddings.weight"][5])
    model = ckpt.load_model()
    for name in ("model.layers.1.mlp.gate_proj", "lm_head"):
        codes, scale = quantise_ternary(t[name + ".weight"].astype(np.float64))
        assert np.array_equal(model.bitlinears[name].codes, codes)
        assert model.bitlinears[name].scale == scale
        assert np.array_equal(model.bitlinears[name].norm, t[name + ".norm.weight"])
    assert np.array_equal(model.norms["model.layers.0.attn.g_norm"],
                          t["model.layers.0.attn.g_norm.weight"])
    assert np.array_equal(model.embed(7), t["model.embeddings.weight"][7])
    # the tokenizer: Llama-style, <s> first, text back
    ids = ckpt.tokenizer.encode("the tea")
    assert ids[0] == 1 and 259 + 7 in ids  # '▁the' is one piece
    assert ckpt.tokenizer.decode(ids) == "the tea"


def test_bf16_conversion_rounds_to_nearest_even():
    vals = np.array([1.0, -2.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.0e38, np.inf, 0.0],
                    dtype=np.float32)
    bits = float32_to_bf16(vals)
    back = bf16_to_float32(bits)
    assert back[0] == 1.0 and back[1] == -2.5
    assert back[2] == 1.0  # a tie goes to the even mantissa
    assert back[3] == 1 + 2 ** -6  # 1 + 3/256 -> 1 + 4/256
    assert np.isinf(back[5]) and back[6] == 0
    assert np.isnan(bf16_to_float32(float32_to_bf16(np.array([np.nan], np.float32))))[0]
    arr = Bf16Array(bits)
    assert arr.shape == (7,) and arr[1] == -2.5 and np.asarray(arr).dtype == np.float32


def test_writer_round_trip_single_and_sharded(tmp_path):
    cfg = HGRNBitConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1)
    t = dict(random_tensors(cfg, 5))
    write_checkpoint(tmp_path / "a", cfg, t, dtype="float16")
    files = write_checkpoint(tmp_path / "b", cfg, t, dtype="bfloat16", shard_bytes=4000)
    assert (tmp_path / "b" / "model.safetensors.index.json") in files
    assert len([f for f in files if f.suffix == ".safetensors"]) > 2
    a, b = open_checkpoint(tmp_path / "a"), open_checkpoint(tmp_path / "b")
    assert a.config == b.config == cfg and a.tokenizer is None
    for name, want in t.items():
        assert np.allclose(np.asarray(a.tensor(name)), want, rtol=1e-3, atol=1e-3)
        assert np.allclose(np.asarray(b.tensor(name)), want, rtol=1e-2, atol=1e-2)
    assert not list((tmp_path / "b").glob("*.tmp"))


def test_random_tiny_is_reproducible(tmp_path):
    write_tiny(tmp_path / "a")
    write_tiny(tmp_path / "b")
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    ckpt = open_checkpoint(tmp_path / "a")
    assert ckpt.config == TINY_CONFIG and ckpt.dtypes == ["BF16"]
    assert ckpt.tokenizer.encode("Hi") == [1, ord("H") + 3, ord("i") + 3]
    assert 100_000 < ckpt.nbytes < 500_000


def test_shipped_default_opens():
    ckpt = open_checkpoint(default_path())
    assert ckpt.config.hidden_size == 128 and ckpt.config.num_hidden_layers == 2
    assert ckpt.dtypes == ["F32"] and ckpt.tokenizer is not None
    assert ckpt.nbytes < 2_000_000


def _broken(tmp_path, **kw):
    return write_single(tmp_path / "ck", tensors_f32(), **kw)


def test_rejections_name_the_file_and_key(tmp_path):
    def expect(path, *words):
        with pytest.raises(CheckpointError) as info:
            open_checkpoint(path)
        msg = str(info.value)
        assert "\n" not in msg
        for w in words:
            assert w in msg, msg
        shutil.rmtree(tmp_path / "ck", ignore_errors=True)

    expect(tmp_path / "nowhere", "nowhere", "no such directory")
    p = _broken(tmp_path)
    (p / "config.json").unlink()
    expect(p, "config.json", "missing")
    p = _broken(tmp_path)
    (p / "config.json").write_text("{\"model_type\": ")
    expect(p, "config.json", "not valid JSON")
    p = _broken(tmp_path)
    (p / "config.json").write_text("[1, 2]")
    expect(p, "config.json", "JSON object")
    for change, key in (({"use_short_conv": True}, "use_short_conv"),
                        ({"num_heads": 2}, "num_heads"), ({"expand_ratio": 2}, "expand_ratio"),
                        ({"model_type": "hgrn"}, "model_type"),
                        ({"hidden_size": -32}, "hidden_size")):
        p = _broken(tmp_path, config=CFG | change)
        expect(p, "config.json", key)
    t = tensors_f32()
    p = write_single(tmp_path / "ck", {k: v for k, v in t.items()
                                       if k != "model.layers.1.attn.f_proj.norm.weight"})
    expect(p, "model.layers.1.attn.f_proj.norm.weight", "missing")
    p = write_single(tmp_path / "ck", t | {"model.layers.2.attn_norm.weight": np.ones(32)})
    expect(p, "model.safetensors", "model.layers.2.attn_norm.weight", "unexpected")
    p = write_single(tmp_path / "ck", t | {"model.layers.0.mlp.down_proj.weight":
                                           np.zeros((32, 255), np.float32)})
    expect(p, "model.layers.0.mlp.down_proj.weight", "[32, 255]", "[32, 256]")
    p = _broken(tmp_path)
    save_file({k: v.astype(np.float64) if k == "model.norm.weight" else v
               for k, v in t.items()}, p / "model.safetensors")
    expect(p, "model.norm.weight", "F64")
    p = _broken(tmp_path)
    (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:-100])
    expect(p, "model.safetensors", "not a valid safetensors file")
    p = _broken(tmp_path)
    (p / "model.safetensors").unlink()
    (p / "pytorch_model.bin").write_bytes(b"")
    expect(p, "model.safetensors.index.json", "pytorch_model.bin")
    p = _broken(tmp_path)
    (p / "tokenizer.json").write_text("{\"version\": \"1.0\", \"model\": 7}")
    expect(p, "tokenizer.json", "not a readable tokenizer.json")


def test_sharded_rejections(tmp_path):
    t = tensors_f32()

    def expect(*words, mutate):
        p = write_sharded(tmp_path / "ck", t)
        mutate(p)
        with pytest.raises(CheckpointError) as info:
            open_checkpoint(p)
        for w in words:
            assert w in str(info.value), str(info.value)
        shutil.rmtree(p)

    def index(p):
        return json.loads((p / "model.safetensors.index.json").read_text())

    def set_index(p, data):
        (p / "model.safetensors.index.json").write_text(json.dumps(data))

    expect("model-00002-of-00003.safetensors", "missing",
           mutate=lambda p: (p / "model-00002-of-00003.safetensors").unlink())
    expect("weight_map", mutate=lambda p: set_index(p, {"metadata": {}}))
    expect("model.safetensors.index.json", "not valid JSON",
           mutate=lambda p: (p / "model.safetensors.index.json").write_text("{"))

    def dangling(p):
        data = index(p)
        data["weight_map"]["model.norm.weight"] = "model-00001-of-00003.safetensors"
        set_index(p, data)
    expect("model.norm.weight", mutate=dangling)

    def unlisted(p):
        data = index(p)
        del data["weight_map"]["lm_head.norm.weight"]
        set_index(p, data)
    expect("lm_head.norm.weight", "does not list it", mutate=unlisted)

    def outside(p):
        data = index(p)
        data["weight_map"]["lm_head.norm.weight"] = "../elsewhere.safetensors"
        set_index(p, data)
    expect("lm_head.norm.weight", "not a file name", mutate=outside)


def test_non_finite_weights_are_rejected_with_the_name(tmp_path):
    t = tensors_f32()
    t["model.layers.1.attn.o_proj.weight"][3, 4] = np.nan
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.attn\.o_proj\.weight.*NaN"):
        open_checkpoint(write_single(tmp_path / "a", t)).load_model()
    t = tensors_f32()
    t["model.layers.0.mlp_norm.weight"][0] = np.inf
    with pytest.raises(CheckpointError, match=r"model\.layers\.0\.mlp_norm\.weight.*NaN"):
        open_checkpoint(write_single(tmp_path / "b", t)).load_model()


def test_tokenizer_model_without_sentencepiece(tmp_path):
    p = write_single(tmp_path / "ck", tensors_f32(), tokenizer=False)
    (p / "tokenizer.model").write_bytes(b"\x00")
    ckpt = open_checkpoint(p)
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        assert ckpt.tokenizer is None and "sentencepiece" in ckpt.tokenizer_note
