"""Tolerances for numeric equivalence tests, derived from the dtype and the scale of the values compared, never
fitted to one machine.

Floating-point results differ in their last bits from one CPU to another (another vector width, another BLAS
kernel, fused multiply-adds, another summation order), so a tolerance at the edge of one machine's rounding fails
on the next. The bound used here: each step of a computation (a layer, an FFT stage, a recurrence step) rounds
its result and may add a few ulps of the largest magnitude involved; the errors of `depth` steps in sequence add
up at worst linearly (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., ch. 3). `ULPS_PER_STEP`
ulps per step is far above what one step's rounding makes, so two correct implementations always pass, and far
below what a wrong one makes (each test says by how much, on both sides).
"""

import torch

ULPS_PER_STEP = 128


def rounding_tolerance(expected: torch.Tensor, depth: int, ulps: int = ULPS_PER_STEP,
                       dtype: torch.dtype | None = None) -> float:
    """The largest absolute difference rounding alone may make between two computations of `expected` (any
    shape) in `dtype` (default: expected's): `ulps` units in the last place (the dtype's eps: 2**-23 for float32,
    2**-52 for float64) of max|expected|, for each of the `depth` steps a value goes through in sequence."""
    scale = expected.detach().abs().max().item()
    return ulps * torch.finfo(dtype or expected.dtype).eps * scale * depth


def assert_equal_up_to_rounding(actual: torch.Tensor, expected: torch.Tensor, depth: int,
                                ulps: int = ULPS_PER_STEP, dtype: torch.dtype | None = None) -> float:
    """Assert that `actual` has `expected`'s shape and values within `rounding_tolerance(expected, depth, ulps,
    dtype)` (default dtype: the coarser of the two); returns the largest absolute difference. The failure names
    the difference and how the tolerance was made."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    dtype = dtype or max(actual.dtype, expected.dtype, key=lambda kind: torch.finfo(kind).eps)
    difference = (actual.detach().double() - expected.detach().double()).abs().max().item()
    tolerance = rounding_tolerance(expected, depth, ulps, dtype)
    assert difference <= tolerance, (
        f"largest difference {difference:.3g} > {tolerance:.3g}: {ulps} {dtype} ulps of "
        f"max|expected| = {expected.detach().abs().max().item():.3g}, times depth {depth}")
    return difference
