"""Throughput of YOLOv1 loss implementations side by side, each checked against the oracle first.

The harness (contenders, inputs, timing, sweep, report, targets, and the baseline checkout the
fixed-cost target is measured against) is importable, so that the
``yolov1-loss bench`` command and the pytest-benchmark suite in this folder share it.
"""
