"""Python stages for the daf pipeline harness (filled in below)."""
