"""Where a fit's time goes: setup, training steps, epoch ends, and the operations of a step.

Fits CNNDigitClassifier (the defaults, or ``--params``) on the 60,000 MNIST training images
twice in this process and reports:

- for the first fit (a fresh process, as a user's first fit and ``benchmarks/mnist.py``'s
  fits are), its wall time split by callbacks around every training batch: the time before
  the first training step (checking the input, building the network and its optimizer), the
  training steps themselves, the time between the steps of an epoch (fetching the next
  batch), the ends of all epochs but the last (scoring the held-out tenth, the callbacks) and
  the time after the last step (the last epoch's end, then keeping the best epoch and
  temperature scaling);
- for the second fit, torch.profiler's view of ``--profile-steps`` training steps in the
  middle of training: each operation's own CPU time per step, largest first. Time a step
  spends outside torch's operations (Python, the autograd engine) shows as the own time of
  the optimizer's step, which runs the forward and backward passes as its closure.

The steps are measured inside a real fit on purpose: a training step timed in a loop of its
own can be much slower than in a fit. Outside a fit on this machine the step's tensors made
glibc return memory to the system and take it back every step (about 4,000 page faults a
step and 1.5x the time), while a fit, whose process already holds the training data, had
about 30.

    python benchmarks/fit_profile.py
    python benchmarks/fit_profile.py --params '{"batch_size": 384}' --top 30

Run it on an otherwise idle machine: other work changes the figures.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback
from torch.profiler import ProfilerActivity, profile

from skdigits import CNNDigitClassifier
from skdigits.datasets import load_mnist

DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


class StepClock(Callback):
    """Record when each training batch begins and ends, and in which epoch."""

    def on_train_begin(self, net, **kwargs):
        self.epoch_ = 0
        self.steps_ = []  # (epoch, begin, end)

    def on_epoch_begin(self, net, **kwargs):
        self.epoch_ += 1

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.begin_ = time.perf_counter()

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.steps_.append((self.epoch_, self.begin_, time.perf_counter()))


class StepProfiler(Callback):
    """Profile training steps ``first`` to ``first + count - 1`` (counted from 0)."""

    def __init__(self, first, count):
        self.first = first
        self.count = count

    def on_train_begin(self, net, **kwargs):
        self.seen_ = 0
        self.profile_ = None
        vars(self).pop("wall_", None)

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        if self.seen_ == self.first:
            self.profile_ = profile(activities=[ProfilerActivity.CPU])
            self.profile_.__enter__()
            self.begin_ = time.perf_counter()
        self.seen_ += 1

    def on_batch_end(self, net, training=False, **kwargs):
        if training and self.seen_ == self.first + self.count:
            self._stop()

    def on_train_end(self, net, **kwargs):
        self._stop()  # a fit of fewer steps than asked for ends the profile here

    def _stop(self):
        if self.profile_ is not None and not hasattr(self, "wall_"):
            self.steps_ = self.seen_ - self.first
            self.wall_ = time.perf_counter() - self.begin_
            self.profile_.__exit__(None, None, None)


def split_fit(start, stop, steps):
    """Return the fit's wall time split into parts, in seconds, as (name, seconds) pairs."""
    epochs, begins, ends = (np.array(column) for column in zip(*steps, strict=True))
    gaps = begins[1:] - ends[:-1]
    same_epoch = epochs[1:] == epochs[:-1]
    return [
        ("before the first training step", begins[0] - start),
        (f"{len(steps)} training steps", float(np.sum(ends - begins))),
        ("between the steps of an epoch", float(np.sum(gaps[same_epoch]))),
        (f"the ends of epochs 1-{int(np.sum(~same_epoch))}", float(np.sum(gaps[~same_epoch]))),
        ("after the last training step (the last epoch's end, the end of fit)", stop - ends[-1]),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=DATA_HOME, help="folder with the MNIST files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--params", type=json.loads, default={}, help="CNNDigitClassifier parameters, JSON"
    )
    parser.add_argument("--profile-steps", type=int, default=40, help="steps to profile")
    parser.add_argument("--top", type=int, default=20, help="operations to list")
    args = parser.parse_args()
    X, y = load_mnist("train", data_home=args.data_home)

    clock = StepClock()
    clf = CNNDigitClassifier(random_state=args.seed, callbacks=[clock], **args.params)
    start = time.perf_counter()
    clf.fit(X, y)
    stop = time.perf_counter()
    durations = np.array([end - begin for _, begin, end in clock.steps_])
    print(f"CNNDigitClassifier parameters: {json.dumps(args.params)}, seed {args.seed}")
    print(f"\nFirst fit: {stop - start:.2f} s; a training step {1000 * durations.mean():.2f} ms")
    print(f"on average, median {1000 * np.median(durations):.2f} ms\n")
    print("| part of the fit | time | share |")
    print("| --- | --- | --- |")
    for name, seconds in split_fit(start, stop, clock.steps_):
        print(f"| {name} | {seconds:.2f} s | {100 * seconds / (stop - start):.1f}% |")

    first = len(clock.steps_) // 2
    profiler = StepProfiler(first, args.profile_steps)
    clf.set_params(callbacks=[profiler]).fit(X, y)
    events = sorted(profiler.profile_.key_averages(), key=lambda event: -event.self_cpu_time_total)
    n = profiler.steps_
    total = sum(event.self_cpu_time_total for event in events) / n / 1000
    print(f"\nSecond fit, training steps {first}-{first + n - 1} under torch.profiler:")
    print(f"{1000 * profiler.wall_ / n:.2f} ms a step of wall time (profiling slows it),")
    print(f"{total:.2f} ms of operations' own CPU time\n")
    print("| operation | calls a step | own CPU time a step | share |")
    print("| --- | --- | --- | --- |")
    for event in events[: args.top]:
        own = event.self_cpu_time_total / n / 1000
        print(f"| `{event.key}` | {event.count / n:g} | {own:.3f} ms | {100 * own / total:.1f}% |")


if __name__ == "__main__":
    main()
