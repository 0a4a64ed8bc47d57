"""The variant kit (issue 18): spectral norm, conditional batch norm, the projection head,
hinge, R1/R2, ResNet networks, and the variants built from them (sngan, cgan-pd, r1gan)."""

import pytest
import torch

from ganbench.testing import check_variant


@pytest.mark.parametrize("name", ["sngan", "cgan-pd", "r1gan"])
def test_kit_variants_pass_the_contract_checks(name, fashion):
    losses = check_variant(name, steps=2, splits=fashion)
    assert len(losses) == 2
