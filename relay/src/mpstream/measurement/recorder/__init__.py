"""Per-NIC bandwidth recorder: kernel interface counters sampled into bwm-ng-compatible CSV."""
