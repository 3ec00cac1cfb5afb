"""What counts as converged, holding and solved, and rates over seeds with their 95 % Wilson interval: the one place
`train`, `evaluate` and the sweep summary (tools/summarise.py) read these from."""

import math

# Validation final-step accuracy from which a member counts as converged.
CONVERGED = 0.99
# Final-step accuracy on fresh sequences of a length from which a member holds at that length.
HOLDS = 0.999
# Delétang et al.'s score (the mean over a range of lengths of the final-step accuracy) from which a member has solved
# parity over that range.
SOLVED = 0.99


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a rate successes/trials."""
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def interval(successes: int, trials: int) -> str:
    """A rate as the tables write it: `16/20 (0.58-0.92)`."""
    low, high = wilson(successes, trials)
    return f"{successes}/{trials} ({low:.2f}-{high:.2f})"


def seeds_until_one(successes: int, trials: int) -> str:
    """The expected number of seeds until one succeeds, 1/p, over the Wilson interval's ends."""
    low, high = wilson(successes, trials)
    if not successes:
        return f"more than {1 / high:.0f}"
    return f"{trials / successes:.1f} ({1 / high:.1f}-{1 / low:.1f})"


def best_of(successes: int, trials: int, draws: int) -> float:
    """The chance that at least one of `draws` seeds succeeds, at the measured rate (a point estimate)."""
    return 1 - (1 - successes / trials) ** draws
