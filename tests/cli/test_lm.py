"""``mmfree run`` end to end, as a user runs it: a subprocess, no checkpoint given."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mmfree.checkpoint import open_checkpoint
from mmfree.cli import main
from mmfree.golden.hgrn_bit import IntegerBitLinear, float_bitlinear, run_step
from mmfree.lm import Decoder, FixedStepper, Sampler, generate, log_softmax, perplexity
from mmfree.tiny_checkpoint import default_path

TEXT = "The quick brown fox jumps over the lazy dog.\n"


def mmfree(*args, cwd=None):
    """Run the installed command in a clean environment (no venv activated)."""
    env = {"HOME": os.environ.get("HOME", "/tmp"), "PATH": "/usr/bin:/bin"}
    exe = os.path.join(os.path.dirname(sys.executable), "mmfree")
    return subprocess.run([exe, "run", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def tiny():
    return open_checkpoint(default_path()).load_model()


def test_out_of_the_box_prompt_and_every_output(tmp_path, tiny):
    (tmp_path / "t.txt").write_text(TEXT)
    r = mmfree("--ids", "1,72,105", "--tokens", "4", "--logits", "l.npy", "--json", "o.json",
               "--perplexity", "t.txt", "--ignore-eos", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "o.json").read_text())
    # the same generation through the library: greedy, the whole-token fixed-point
    # backend (integer) by default
    gen = generate(tiny, FixedStepper(tiny), [1, 72, 105], 4)
    assert out["tokens"] == gen.tokens and out["prompt_ids"] == [1, 72, 105]
    assert f"generated 4 tokens: {gen.tokens}" in r.stdout
    logits = np.load(tmp_path / "l.npy")
    assert logits.dtype == np.float32 and logits.shape == (3, tiny.config.vocab_size)
    assert np.array_equal(logits, np.stack(gen.prompt_logits).astype(np.float32))
    # perplexity of the text under both pipelines, as the library scores it
    ids = open_checkpoint(default_path()).tokenizer.encode(TEXT)
    state, nll = tiny.init_state(), 0.0
    for pos in range(len(ids) - 1):
        lg, state = run_step(tiny, ids[pos], state, float_bitlinear)
        nll -= log_softmax(lg)[ids[pos + 1]]
    ppl = out["perplexity"]
    assert ppl["tokens"] == len(ids) and ppl["bytes"] == len(TEXT.encode())
    assert ppl["float"]["nll"] == pytest.approx(nll, rel=1e-12)
    assert abs(ppl["integer"]["perplexity"] / ppl["float"]["perplexity"] - 1) < 0.02
    assert abs(ppl["bitlinear-int"]["perplexity"] / ppl["float"]["perplexity"] - 1) < 0.02
    bl = perplexity(tiny, IntegerBitLinear(), ids, len(TEXT.encode()))
    assert ppl["bitlinear-int"]["nll"] == pytest.approx(bl.nll, rel=1e-12)
    fx = perplexity(tiny, FixedStepper(tiny), ids, len(TEXT.encode()))
    assert ppl["integer"]["nll"] == pytest.approx(fx.nll, rel=1e-12)
    assert fx.nll != bl.nll  # two different pipelines
    assert "integer - float" in r.stdout and "bitlinear-int - float" in r.stdout


def test_prompt_text_float_backend_and_seeded_sampling(tmp_path, tiny):
    r = mmfree("--prompt", "Hi", "--tokens", "6", "--backend", "float", "--temperature", "1.5",
               "--top-k", "50", "--seed", "11", "--ignore-eos", "--json", "o.json",
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    prompt = open_checkpoint(default_path()).tokenizer.encode("Hi")
    assert f"prompt {len(prompt)} tokens {prompt}" in r.stdout and "text: " in r.stdout
    tokens = json.loads((tmp_path / "o.json").read_text())["tokens"]
    # the seed reproduces the draw (here in a second process, through the library)
    lib = generate(tiny, float_bitlinear, prompt, 6, Sampler(1.5, 50, 11))
    assert lib.tokens == tokens
    assert generate(tiny, float_bitlinear, prompt, 6).tokens != tokens  # not greedy
    assert generate(tiny, float_bitlinear, prompt, 6, Sampler(1.5, 50, 12)).tokens != tokens


def test_bad_input_is_one_line_and_status_2_subprocess():
    r = mmfree("--ids", "1,2,999")
    assert r.returncode == 2
    assert r.stderr.strip() == "mmfree: --ids: token id 999 is outside the vocabulary 0..511"
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args, words", [
    ([], "give --prompt"),
    (["--ids", "1,a"], "'a' is not an integer"),
    (["--ids", "1", "--tokens", "-1"], "--tokens"),
    (["--ids", "1", "--temperature", "-1"], "--temperature"),
    (["--ids", "1", "--temperature", "nan"], "--temperature"),
    (["--ids", "1", "--top-k", "5"], "--top-k"),
    (["--ids", "1", "--checkpoint", "/no/such/dir"], "no such directory"),
    (["--ids", "1", "--logits", "/no/such/dir/x.npy"], "--logits"),
    (["--perplexity", "/no/such/file.txt"], "--perplexity"),
    (["--perplexity", "BIN"], "not UTF-8"),
    (["--perplexity", "ONE"], "at least 2"),
    (["--prompt", "x", "--checkpoint", "NOTOK"], "needs a tokenizer"),
    (["--ids", "1", "--checkpoint", "BADCFG"], "config.json"),
])
def test_bad_inputs(args, words, tmp_path, capsys):
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "one.txt").write_text("")
    notok = tmp_path / "notok"
    notok.mkdir()
    for f in ("config.json", "model.safetensors"):
        (notok / f).write_bytes((default_path() / f).read_bytes())
    badcfg = tmp_path / "badcfg"
    badcfg.mkdir()
    (badcfg / "config.json").write_text('{"model_type": "hgrn_bit", "use_short_conv": true}')
    subst = {"BIN": str(tmp_path / "bin.txt"), "ONE": str(tmp_path / "one.txt"),
             "NOTOK": str(notok), "BADCFG": str(badcfg)}
    status = main(["run", *[subst.get(a, a) for a in args]])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("mmfree: ") and words in err[0], err


def test_decoder_prompt_only_and_eos():
    dec = Decoder([1, 2, 3], 0)
    fed = []
    while not dec.done:
        fed.append(dec.next_token())
        dec.observe(np.eye(5)[4])
    assert fed == [1, 2, 3] and dec.result.tokens == [] and len(dec.result.prompt_logits) == 3
    dec = Decoder([1], 5, eos=4)
    while not dec.done:
        dec.next_token()
        dec.observe(np.eye(5)[4])
    assert dec.result.tokens == [4] and dec.result.stopped_at_eos


def test_integer_backend_is_the_fixed_point_token(tiny, capsys):
    """``--backend integer`` is the whole-token fixed-point model: its logits are the
    golden integers scaled by 2**-res_frac, its greedy choice is their vec_argmax, and
    ``bitlinear-int`` (float element-wise work) gives different logits."""
    from mmfree.golden.hgrn_fixed import FixedModel, fixed_token_step

    fm = FixedModel(tiny)
    state, tokens, argmaxes = fm.init_state(), [1, 72], []
    for tok in tokens:
        r = fixed_token_step(fm, tok, state)
        state = r.state
        argmaxes.append(r.argmax)
    gen = generate(tiny, FixedStepper(tiny), tokens, 1)
    assert gen.tokens == [argmaxes[-1]]
    assert np.array_equal(gen.prompt_logits[-1], r.logits * 2.0 ** -fm.cfg.res_frac)
    other = generate(tiny, IntegerBitLinear(), tokens, 1)
    assert not np.array_equal(other.prompt_logits[-1], gen.prompt_logits[-1])
    assert main(["run", "--ids", "1,72", "--tokens", "1", "--backend", "bitlinear-int"]) == 0
    assert "backend bitlinear-int" in capsys.readouterr().out
