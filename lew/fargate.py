"""Fargate's task sizes: which memory goes with which CPU. One table for the cost model and the local stack's checks."""

from __future__ import annotations

# vCPU -> (lowest GB, highest GB, step GB), from the Fargate task-size table of the ECS developer guide.
# 0.25 vCPU takes only 0.5, 1 or 2 GB, which the step rule below cannot say, hence its own entry.
TASK_SIZES: dict[float, tuple[float, float, float]] = {
    0.5: (1, 4, 1),
    1: (2, 8, 1),
    2: (4, 16, 1),
    4: (8, 30, 1),
    8: (16, 60, 4),
    16: (32, 120, 8),
}
QUARTER_VCPU_MEMORY_GB = (0.5, 1.0, 2.0)
VCPU_CHOICES = (0.25, *TASK_SIZES)
CPU_UNITS_PER_VCPU = 1024
MIB_PER_GB = 1024


def memory_choices_gb(vcpu: float) -> tuple[float, ...]:
    """Every memory size (GB) Fargate offers with this many vCPU; empty when the vCPU is not a Fargate size."""
    if vcpu == 0.25:
        return QUARTER_VCPU_MEMORY_GB
    if vcpu not in TASK_SIZES:
        return ()
    low, high, step = TASK_SIZES[vcpu]
    count = int((high - low) / step) + 1
    return tuple(low + index * step for index in range(count))


def describe_memory_choices(vcpu: float) -> str:
    """`2-8 GB in 1 GB steps`, or `0.5, 1 or 2 GB`."""
    if vcpu == 0.25:
        return "0.5, 1 or 2 GB"
    low, high, step = TASK_SIZES[vcpu]
    return f"{low:g}-{high:g} GB in {step:g} GB steps"


def task_size_problem(vcpu: float, memory_gb: float) -> str | None:
    """Why Fargate has no task of this size, in words; None when it has one."""
    if vcpu not in VCPU_CHOICES:
        choices = ", ".join(f"{choice:g}" for choice in VCPU_CHOICES)
        return f"{vcpu:g} vCPU is not a Fargate size (choose {choices})"
    if memory_gb not in memory_choices_gb(vcpu):
        return f"{memory_gb:g} GB is not a Fargate size for {vcpu:g} vCPU ({describe_memory_choices(vcpu)})"
    return None
