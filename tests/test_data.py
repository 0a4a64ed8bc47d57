import pytest
import torch

from ganbench.data import BatchSource, DatasetSplits, check_splits, load_dataset, to_float, to_uint8
from ganbench.errors import UsageError
from ganbench.specs import DatasetSpec


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


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --- check_splits: what any dataset plugin's load returned, against its spec -------------------

TINY = DatasetSpec("tiny", lambda request: None, (1, 2, 2), ("a", "b", "c"))


def tiny_splits(**changes):
    fields = dict(
        name="tiny",
        train_images=torch.zeros(6, 1, 2, 2, dtype=torch.uint8),
        train_labels=torch.tensor([0, 1, 2, 0, 1, 2]),
        test_images=torch.zeros(3, 1, 2, 2, dtype=torch.uint8),
        test_labels=torch.tensor([0, 1, 2]),
        class_names=("a", "b", "c"),
        source="--data-dir /somewhere",
    )
    return DatasetSplits(**{**fields, **changes})


def test_check_splits_accepts_splits_that_match_the_spec():
    check_splits(TINY, tiny_splits())  # raises if anything is refused


@pytest.mark.parametrize("split, labels, bad", [("train", [0, 1, 2, 0, 11, 11], 11), ("test", [0, -1, 2], -1)])
def test_a_label_outside_the_classes_is_named_with_the_accepted_range(split, labels, bad):
    with pytest.raises(UsageError) as err:
        check_splits(TINY, tiny_splits(**{f"{split}_labels": torch.tensor(labels)}))
    outside = sum(not 0 <= v <= 2 for v in labels)
    assert one_line(err).startswith(
        f"dataset tiny from --data-dir /somewhere has {split} label {bad} "
        f"({outside} of its {len(labels)} {split} labels are outside 0..2); accepted: 0..2 for its 3 classes; "
    )


def test_images_of_another_shape_than_the_spec_are_refused():
    splits = tiny_splits(
        train_images=torch.zeros(6, 1, 3, 3, dtype=torch.uint8), test_images=torch.zeros(3, 1, 3, 3, dtype=torch.uint8)
    )
    with pytest.raises(
        UsageError,
        match=r"^dataset tiny from --data-dir /somewhere holds 1x3x3 train images, its spec declares 1x2x2; ",
    ):
        check_splits(TINY, splits)


def test_test_images_of_another_shape_than_train_images_are_refused():
    with pytest.raises(UsageError, match=r"holds 1x3x3 test images but 1x2x2 train images; both must be 1x2x2"):
        check_splits(TINY, tiny_splits(test_images=torch.zeros(3, 1, 3, 3, dtype=torch.uint8)))


def test_class_names_other_than_the_spec_are_refused():
    with pytest.raises(UsageError, match=r"names its classes \(a, b, x\) but its spec declares \(a, b, c\)"):
        check_splits(TINY, tiny_splits(class_names=("a", "b", "x")))


def test_an_empty_split_is_refused():
    splits = tiny_splits(test_images=torch.zeros(0, 1, 2, 2, dtype=torch.uint8), test_labels=torch.zeros(0).long())
    with pytest.raises(UsageError, match=r"has an empty test split"):
        check_splits(TINY, splits)


def test_a_load_that_returns_something_else_is_refused():
    with pytest.raises(UsageError, match=r"dataset tiny's load returned dict, not DatasetSplits"):
        check_splits(TINY, {})


@pytest.mark.parametrize("exc", [ValueError("bad header"), OSError("disk on fire"), EOFError("cut short")])
def test_a_plugins_load_error_becomes_one_line_naming_the_dataset(exc):
    def load(request):
        raise exc

    with pytest.raises(UsageError) as err:
        load_dataset(DatasetSpec("tiny", load, (1, 2, 2), ("a",)), None)
    assert one_line(err).startswith(f"dataset tiny could not be loaded ({type(exc).__name__}: {exc}); ")


def test_a_plugins_usage_error_passes_through_unchanged():
    original = UsageError("tiny data not found; pass --data-dir DIR")

    def load(request):
        raise original

    with pytest.raises(UsageError) as err:
        load_dataset(DatasetSpec("tiny", load, (1, 2, 2), ("a",)), None)
    assert err.value is original


# --- attributes: annotations for both splits, and only for specs that declare them --------------

ANNOTATED = DatasetSpec("tiny", lambda request: None, (1, 2, 2), ("a", "b", "c"), attributes=("smiling", "hat"))


def annotations(n, columns=2):
    return torch.arange(n * columns).view(n, columns).remainder(3).eq(0)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(train_attributes=annotations(6)), "both splits or neither"),
        (
            dict(train_attributes=annotations(6).long(), test_attributes=annotations(3)),
            r"train attributes must be bool",
        ),
        (
            dict(train_attributes=annotations(6), test_attributes=annotations(4)),
            r"test attributes must be bool of shape \(3, A\)",
        ),
        (dict(train_attributes=annotations(6, 2), test_attributes=annotations(3, 1)), "the same columns"),
    ],
    ids=["one-split", "not-bool", "wrong-count", "other-columns"],
)
def test_splits_validate_attributes(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_splits(**changes)


def test_check_splits_accepts_annotations_of_the_declared_attributes():
    check_splits(ANNOTATED, tiny_splits(train_attributes=annotations(6), test_attributes=annotations(3)))


def test_declared_annotated_attributes_without_annotations_are_refused():
    with pytest.raises(UsageError) as err:
        check_splits(ANNOTATED, tiny_splits())
    assert one_line(err).startswith(
        "dataset tiny from --data-dir /somewhere holds no attribute annotations, "
        "its spec declares 2 annotated attributes (smiling, hat); "
    )


def test_annotations_of_another_number_of_attributes_are_refused():
    splits = tiny_splits(train_attributes=annotations(6, 3), test_attributes=annotations(3, 3))
    with pytest.raises(UsageError, match=r"holds 3 attribute columns, its spec declares 2 annotated attributes"):
        check_splits(ANNOTATED, splits)


@pytest.mark.parametrize(
    "spec, why",
    [
        (TINY, "declares no attributes"),
        (
            DatasetSpec("tiny", None, (1, 2, 2), ("a", "b", "c"), attributes=("ink",), measure_attributes=len),
            "measures its attributes from the pixels",
        ),
    ],
    ids=["undeclared", "measured"],
)
def test_annotations_a_spec_does_not_declare_are_refused(spec, why):
    splits = tiny_splits(train_attributes=annotations(6, 1), test_attributes=annotations(3, 1))
    with pytest.raises(UsageError, match=rf"holds attribute annotations but its spec {why}; "):
        check_splits(spec, splits)
