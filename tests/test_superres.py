import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ganbench.superres import bicubic, check_scale, downsample, psnr, ssim


def test_downsample_is_the_block_mean():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert downsample(x, 2).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]


def test_bicubic_upsamples_and_stays_in_range(fashion):
    x = fashion.test_images[:4].float() / 127.5 - 1
    up = bicubic(downsample(x, 2), 2)
    assert up.shape == x.shape and up.min() >= -1 and up.max() <= 1


def test_psnr_and_ssim_match_scikit_image(fashion):
    target = fashion.test_images[:6]
    noisy = (target.float() + torch.randn(target.shape, generator=torch.Generator().manual_seed(0)) * 20).clamp(0, 255)
    noisy = noisy.round().to(torch.uint8)
    ours_psnr, ours_ssim = psnr(noisy, target), ssim(noisy, target)
    for i in range(6):
        a, b = noisy[i, 0].double().numpy() / 255, target[i, 0].double().numpy() / 255
        assert ours_psnr[i].item() == pytest.approx(peak_signal_noise_ratio(b, a, data_range=1.0), rel=1e-9)
        reference = structural_similarity(
            b, a, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert ours_ssim[i].item() == pytest.approx(reference, rel=1e-9)


def test_identical_images_score_perfectly(fashion):
    x = fashion.test_images[:3]
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64)) and (psnr(x, x) > 100).all()


@pytest.mark.parametrize("scale", [1, 3, 5])
def test_bad_scales(scale):
    with pytest.raises(ValueError, match="scale"):
        check_scale((1, 28, 28), scale)
