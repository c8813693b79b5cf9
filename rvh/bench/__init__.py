"""Benchmarks: ``rvh bench mips`` (CPU speed against QEMU 7.2); the virtualization overhead
benchmarks will live here too."""
