"""``gatortron-jax embed``: one [tokens, hidden] float32 array per line; long lines windowed, never truncated."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from gatortron_jax.cli import main as cli  # noqa: E402
from gatortron_jax.convert.hf_dir import import_hf
from gatortron_jax.models.model_dir import vocab_of  # noqa: E402
from gatortron_jax.inference.embed import plan_windows  # noqa: E402
from gatortron_jax.text.windows import max_context_owners as owner_of_tokens  # noqa: E402
from test_convert_hf import hf_model, save_hf_dir  # noqa: E402


def test_window_plan_covers_every_token_with_max_context():
    assert plan_windows(0, 14, 7) == [(0, 0)]
    assert plan_windows(14, 14, 7) == [(0, 14)]
    windows = plan_windows(40, 14, 7)
    assert windows[0][0] == 0 and windows[-1][1] == 40 and all(e - s == 14 for s, e in windows)
    owner = owner_of_tokens(40, windows)
    for t, w in enumerate(owner):
        s, e = windows[w]
        assert s <= t < e
        best = max(min(t - s2, e2 - 1 - t) for s2, e2 in windows if s2 <= t < e2)
        assert min(t - s, e - 1 - t) == best


def test_embed_cli_matches_transformers_and_stitches_long_lines(tmp_path, capsys):
    hf = hf_model("ForMaskedLM", "bert", 24, 2, 3, 40, 64)  # max_position_embeddings=32
    hf_dir = save_hf_dir(hf, tmp_path / "hf", vocab_entries=64)
    import_hf(hf_dir, str(tmp_path / "model"))
    vocab = vocab_of(str(tmp_path / "model"))
    long_line = " ".join(["the patient was given pain mg of chest and"] * 8)  # 72 tokens > 30
    lines = ["the patient denies chest pain", "", long_line, "Patient was given 5 mg"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    out = str(tmp_path / "out.npz")
    assert cli.main(["embed", "--checkpoint", str(tmp_path / "model"), "--input", str(tmp_path / "in.txt"),
                     "--output", out, "--max_length", "16", "--overlap", "6"]) == 0
    printed = capsys.readouterr().out
    assert "one contextual vector per token, not text" in printed and "windowed" in printed
    npz = np.load(out)
    assert sorted(npz.files) == ["0", "1", "2", "3"]
    base = transformers.AutoModel.from_pretrained(hf_dir).eval()

    def reference(ids):
        with torch.no_grad():
            return base(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()

    for i, line in enumerate(lines):
        ids = [vocab.cls_id] + vocab.encode(line) + [vocab.sep_id]
        arr = npz[str(i)]
        assert arr.dtype == np.float32 and arr.shape == (len(ids), 24)
        if len(ids) <= 16:  # one window: exactly the transformers output
            assert np.abs(arr - reference(ids)).max() < 1e-4
    # the long line: 72 text tokens in windows of 14; each token comes from its max-context window
    ids = vocab.encode(long_line)
    arr = npz["2"]
    assert arr.shape[0] == len(ids) + 2 == 74
    windows = plan_windows(len(ids), 14, 6)
    owner = owner_of_tokens(len(ids), windows)
    for w, (s, e) in enumerate(windows):
        ref = reference([vocab.cls_id] + ids[s:e] + [vocab.sep_id])
        mine = np.nonzero(owner == w)[0]
        assert np.abs(arr[1 + mine] - ref[1 + mine - s]).max() < 1e-4
        if w == 0:
            assert np.abs(arr[0] - ref[0]).max() < 1e-4  # [CLS] from the first window
        if w == len(windows) - 1:
            assert np.abs(arr[-1] - ref[-1]).max() < 1e-4  # [SEP] from the last


def test_embed_streams_in_chunks_with_the_same_arrays(tmp_path):
    """--chunk_lines 1 (one line in memory at a time) writes exactly the arrays of one big chunk."""
    hf = hf_model("ForMaskedLM", "bert", 24, 2, 3, 40, 64)
    import_hf(save_hf_dir(hf, tmp_path / "hf", vocab_entries=64), str(tmp_path / "model"))
    lines = ["the patient denies chest pain", "", " ".join(["pain mg of chest"] * 12), "Patient was given 5 mg"] * 3
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    outs = []
    for chunk in ("1", "100"):
        out = str(tmp_path / f"out{chunk}.npz")
        assert cli.main(["embed", "--checkpoint", str(tmp_path / "model"), "--input", str(tmp_path / "in.txt"),
                         "--output", out, "--max_length", "16", "--chunk_lines", chunk]) == 0
        outs.append(np.load(out))
    assert sorted(outs[0].files, key=int) == [str(i) for i in range(len(lines))] == sorted(outs[1].files, key=int)
    for k in outs[0].files:
        np.testing.assert_allclose(outs[0][k], outs[1][k], atol=1e-5)
    assert not list(tmp_path.glob("*.tmp.*"))  # written atomically


def test_embed_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["embed", "--checkpoint", str(tmp_path / "none"), "--input", str(tmp_path / "x.txt"),
                     "--output", str(tmp_path / "o.npz")]) == 2
    assert "x.txt: input file not found" in capsys.readouterr().err
    (tmp_path / "x.txt").write_bytes(b"ok\n\xff\xfe\n")
    assert cli.main(["embed", "--strict", "--checkpoint", str(tmp_path / "none"), "--input", str(tmp_path / "x.txt"),
                     "--output", str(tmp_path / "o.npz")]) == 2
    assert "x.txt: not valid UTF-8 at byte offset 3 (line 2" in capsys.readouterr().err
    # Without --strict the line is kept (one array per input line), its bytes replaced and reported.
    from gatortron_jax.inference.embed import read_lines

    assert read_lines(str(tmp_path / "x.txt")) == ["ok", "\ufffd\ufffd"]
