"""`make bench`: the old release flow, ours and the build floor, side by side on one local stack."""
