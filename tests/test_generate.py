import numpy as np
import pytest

from parity_lstm.data import files
from parity_lstm.data.encoding import PAD
from parity_lstm.data.sampling import bits_of_stream
from parity_lstm.params import DataParams
from stages import generate, targets
from stages.generate import summary, tally
from tests.arrays import generated

PARAMS = DataParams(seq_len=20, min_len=None, count=500, val_count=200, test_count=300, seed=7)


def test_shapes_and_dtype():
    train, val, test = generated(PARAMS)
    assert train.shape == (500, 20) and val.shape == (200, 20) and test.shape == (300, 20)
    assert train.dtype == val.dtype == test.dtype == np.uint8
    assert set(np.unique(train)) == set(np.unique(val)) == set(np.unique(test)) == {0, 1}


def test_same_seed_same_bits_other_seed_other_bits():
    first, second = generated(PARAMS), generated(PARAMS)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, second, strict=True))
    other_seed, _, _ = generated(PARAMS.model_copy(update={"seed": 8}))
    assert not np.array_equal(first[0], other_seed)


def test_training_validation_and_test_sets_are_different_draws():
    sets = generated(PARAMS.model_copy(update={"val_count": PARAMS.count, "test_count": PARAMS.count}))
    for first, second in ((0, 1), (0, 2), (1, 2)):
        assert not np.array_equal(sets[first], sets[second])
        # 20 random bits give ~1e6 sequences: almost no sequence of one set should also be in the other.
        rows = {row.tobytes() for row in sets[first]}
        assert sum(row.tobytes() in rows for row in sets[second]) < 5


def test_adding_the_validation_set_changed_no_training_or_test_bit():
    """The training and test streams are the first two spawned from the seed, as before validation existed."""
    train, _, test = generated(PARAMS)
    old_train, old_test = (np.random.default_rng(seed) for seed in np.random.SeedSequence(PARAMS.seed).spawn(2))
    np.testing.assert_array_equal(train, old_train.integers(0, 2, size=(500, 20), dtype=np.uint8))
    np.testing.assert_array_equal(test, old_test.integers(0, 2, size=(300, 20), dtype=np.uint8))


def test_bits_are_fair_coin_flips():
    train, _, _ = generated(DataParams(seq_len=50, min_len=None, count=20_000, val_count=1, test_count=1, seed=0))
    figures = summary(tally(train), seq_len=50)
    assert figures["share_of_ones"] == pytest.approx(0.5, abs=0.01)
    assert figures["share_odd_parity"] == pytest.approx(0.5, abs=0.02)


def test_summary_adds_up_across_blocks():
    bits = np.array([[PAD, 1, 1], [0, 1, 0], [1, 1, 1]], np.uint8)
    expected = {"count": 3, "seq_len": 3, "mean_length": 8 / 3, "share_of_ones": 6 / 8, "share_odd_parity": 2 / 3}
    assert summary(tally(bits), 3) == expected
    assert summary(tally(bits[:1]) + tally(bits[1:]), 3) == expected


def test_variable_lengths_are_padded_in_front():
    params = DataParams(seq_len=12, min_len=3, count=2000, val_count=10, test_count=10, seed=0)
    bits, _, _ = generated(params)
    assert PAD == 2  # the files' format: uint8, 2 for padding (docs/pipeline.md)
    real = bits != PAD
    lengths = real.sum(axis=1)
    assert lengths.min() == 3 and lengths.max() == 12
    # Real steps are a suffix: once a sequence starts, it has no padding.
    np.testing.assert_array_equal(real, np.arange(12) >= 12 - lengths[:, None])
    assert set(np.unique(bits[real])) == {0, 1}
    # The same data at fixed length: the bits are the same draws, only the padding differs.
    fixed, _, _ = generated(params.model_copy(update={"min_len": None}))
    np.testing.assert_array_equal(bits[real], fixed[real])


def test_the_lengths_are_drawn_from_the_same_stream_after_every_bit():
    """The stream's layout, as `sequences` says: the lengths never reuse a draw the bits used."""
    params = DataParams(seq_len=12, min_len=3, count=101, val_count=10, test_count=10, seed=0)
    bits, _, _ = generated(params)
    _, seed, count = generate.splits(params)[0]
    after_the_bits = np.random.Generator(np.random.PCG64(seed).advance(-(-count * params.seq_len // 8)))
    lengths = after_the_bits.integers(params.min_len, params.seq_len, size=count, endpoint=True)
    np.testing.assert_array_equal((bits != PAD).sum(axis=1), lengths)


def test_min_len_above_seq_len_is_refused():
    with pytest.raises(ValueError, match="min_len"):
        DataParams(seq_len=5, min_len=6, count=1, val_count=1, test_count=1, seed=0)


@pytest.mark.parametrize("start, count", [(0, 1), (0, 64), (3, 5), (13, 100), (800, 7)])
def test_any_slice_of_the_stream_is_what_numpy_draws_at_that_place(start, count):
    seed = np.random.SeedSequence(5)
    drawn = np.random.default_rng(seed).integers(0, 2, size=start + count, dtype=np.uint8)
    np.testing.assert_array_equal(bits_of_stream(seed, start, count), drawn[start:])


def stage_outputs(directory, monkeypatch, block_steps: int) -> dict[str, bytes]:
    """Run `generate` and `targets` in `directory` with blocks of `block_steps` steps; every file they write."""
    monkeypatch.chdir(directory)
    monkeypatch.setattr(files, "BLOCK_STEPS", block_steps)
    generate.main()
    targets.main()
    written = [*directory.glob("data/*"), *directory.glob("metrics/*")]
    return {str(path.relative_to(directory)): path.read_bytes() for path in written}


@pytest.mark.parametrize("mode", ["running", "final"])
def test_the_block_size_changes_no_byte_of_data_or_metrics(tmp_path, monkeypatch, mode):
    params = f"""
data: {{seq_len: 13, min_len: 2, count: 301, val_count: 23, test_count: 37, seed: 4}}
targets: {{mode: {mode}, weighting: inverse_position}}
"""
    outputs = []
    for block_steps in (1, 40, 1 << 22):  # a row at a time, a few rows (not a multiple of 8 bits), all at once
        (tmp_path / str(block_steps)).mkdir()
        (tmp_path / str(block_steps) / "params.yaml").write_text(params)
        outputs.append(stage_outputs(tmp_path / str(block_steps), monkeypatch, block_steps))
    assert len(outputs[0]) == 9 and outputs[0] == outputs[1] == outputs[2]
    # What was written in blocks is the file np.save writes.
    written = np.load(tmp_path / "1/data/train_loss_factors.npy")
    assert written.shape == (301, 13) and written.dtype == np.float32
    np.save(tmp_path / "saved.npy", written)
    assert (tmp_path / "saved.npy").read_bytes() == (tmp_path / "1/data/train_loss_factors.npy").read_bytes()
