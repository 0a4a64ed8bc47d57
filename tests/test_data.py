import pytest
import torch

from ganbench.data import BatchSource, DatasetSplits, to_float, to_uint8


def test_uint8_float_round_trip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_float(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)


def test_batches_cover_an_epoch_without_replacement(fashion):
    images, labels = fashion.train_images[:640], fashion.train_labels[:640]
    source = BatchSource(images, labels, batch_size=64, seed=3)
    seen, seen_labels = [], []
    for _ in range(10):
        batch = source.next()
        assert batch.images.shape == (64, 1, 28, 28) and batch.images.dtype == torch.float32
        assert batch.images.min() >= -1 and batch.images.max() <= 1
        seen.append(to_uint8(batch.images))
        seen_labels.append(batch.labels)
    assert source.images_seen == 640
    # every image exactly once, with its own label: the multisets of (image, label) pairs are equal
    pairs = lambda x, y: sorted(zip(map(bytes, x.flatten(1).numpy()), y.tolist()))  # noqa: E731
    assert pairs(torch.cat(seen), torch.cat(seen_labels)) == pairs(images, labels)
    assert not torch.equal(torch.cat(seen_labels), labels)  # shuffled, not handed out in order


def test_same_seed_same_batches_and_state_resumes_exactly(fashion):
    a = BatchSource(fashion.train_images, fashion.train_labels, 32, seed=7)
    b = BatchSource(fashion.train_images, fashion.train_labels, 32, seed=7)
    for _ in range(3):
        assert torch.equal(a.next().images, b.next().images)
    state = a.state_dict()
    expected = [a.next().labels for _ in range(5)]
    c = BatchSource(fashion.train_images, fashion.train_labels, 32, seed=99)
    c.load_state_dict(state)
    assert all(torch.equal(c.next().labels, e) for e in expected)
    assert c.images_seen == a.images_seen
    other = BatchSource(fashion.train_images, fashion.train_labels, 32, seed=8)
    assert not torch.equal(
        other.next().labels, BatchSource(fashion.train_images, fashion.train_labels, 32, seed=7).next().labels
    )


def test_splits_validate_dtypes(fashion):
    with pytest.raises(ValueError, match="uint8"):
        DatasetSplits(
            "x", fashion.test_images.float(), fashion.test_labels, fashion.test_images, fashion.test_labels, ("a",)
        )
    with pytest.raises(ValueError, match="int64"):
        DatasetSplits(
            "x", fashion.test_images, fashion.test_labels.int(), fashion.test_images, fashion.test_labels, ("a",)
        )


def test_batch_size_is_checked(fashion):
    with pytest.raises(ValueError, match="batch_size"):
        BatchSource(fashion.test_images[:10], fashion.test_labels[:10], batch_size=11, seed=0)
