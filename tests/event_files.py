"""TensorBoard event files read back with TensorBoard's own reader (which applies resume purges)."""

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read_events(path: Path) -> EventAccumulator:
    """Every event of a run directory (or one event file), nothing sampled away."""
    events = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value), ...] in the order TensorBoard shows them."""
    events = read_events(path)
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
