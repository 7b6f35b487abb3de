import torch
import torch.nn.functional as F

from wmprune.data.loader import PAD, TensorLoader, channel_stats


def _loader(images, augment=True, train=True, batch=16, seed=0):
    mean, std = channel_stats(images)
    return TensorLoader(images, torch.arange(len(images)), batch, device=torch.device("cpu"), mean=mean, std=std,
                        train=train, augment=augment, seed=seed)


def test_augmentation_is_a_padded_crop_and_flip_of_each_image():
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    loader = _loader(images)
    out = loader._augment(torch.arange(len(images)), *loader._draw(len(images), torch.Generator().manual_seed(5)))
    padded = F.pad(images, (PAD,) * 4)
    flipped = 0
    for i in range(len(images)):
        crops = [padded[i, :, y:y + 32, x:x + 32] for y in range(2 * PAD + 1) for x in range(2 * PAD + 1)]
        plain = any(torch.equal(out[i], crop) for crop in crops)
        mirrored = any(torch.equal(out[i], crop.flip(2)) for crop in crops)
        assert plain or mirrored, i
        flipped += mirrored and not plain
    assert 0 < flipped < len(images)


def test_each_epoch_is_a_permutation_fixed_by_seed_and_epoch():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    labels_of = lambda loader, epoch: torch.cat([y for _, y in loader.epoch(epoch)])  # noqa: E731
    first = labels_of(_loader(images), 3)
    assert sorted(first.tolist()) == list(range(64))
    assert torch.equal(first, labels_of(_loader(images), 3))
    assert not torch.equal(first, labels_of(_loader(images), 4))
    assert not torch.equal(first, labels_of(_loader(images, seed=1), 3))


def test_test_split_is_in_order_unaugmented_and_normalised():
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    loader = _loader(images, train=False, batch=16)
    batches = list(loader.epoch(0))
    assert [len(y) for _, y in batches] == [16, 16, 8]
    x = torch.cat([x for x, _ in batches])
    assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(40))
    mean, std = channel_stats(images)
    torch.testing.assert_close(x, (images.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
