"""Stopping the training loop: SIGTERM/SIGINT stop it after the step in flight with a checkpoint of that
step, a resumed fit continues exactly, a non-finite loss is one clear error, curves get no duplicate steps."""

from __future__ import annotations

import os
import signal

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import nn

from projects.core import pipeline, signals
from projects.core.callbacks import MLflowLogger
from projects.core.errors import TrainingError
from projects.core.loop import Callback, Trainer

RNG = np.random.default_rng(0)
IMAGES = torch.from_numpy(RNG.normal(size=(40, 6)).astype(np.float32))
LABELS = torch.from_numpy(RNG.integers(0, 3, 40).astype(np.int64))
STEPS_PER_EPOCH = 10  # 40 samples, batch 4


class Noise:
    """A seeded batch transform with state, like the batched augmentations."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch):
        x, y = batch
        return x + 0.1 * torch.randn(x.shape, generator=self.generator), y

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


def make_trainer(epochs: int = 2, seed: int = 0, lr: float = 0.1, callbacks=()) -> Trainer:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.2), nn.Linear(8, 3))

    def step(m, batch):
        x, y = batch
        return nn.functional.cross_entropy(m(x), y), len(x)

    loader = pipeline.DeviceBatches(IMAGES, LABELS, 4, shuffle=True, seed=seed)
    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
        loader,
        step,
        epochs=epochs,
        precision="fp32",
        progress=False,
        batch_transform=Noise(seed),
        callbacks=callbacks,
        log_every_n_steps=3,
    )


class SignalAtStep(Callback):
    """Sends a real signal to this process after optimiser step ``at`` (while the loop defers it)."""

    def __init__(self, at: int, sig: int = signal.SIGTERM, repeat: int = 1):
        self.at, self.sig, self.repeat = at, sig, repeat
        self.saved: dict | None = None

    def on_optimizer_step(self, trainer):
        if trainer.global_step == self.at:
            for _ in range(self.repeat):
                os.kill(os.getpid(), self.sig)

    def on_interrupt(self, trainer):
        self.saved = trainer.state_dict()


@pytest.fixture
def handlers():
    previous = {sig: signal.getsignal(sig) for sig in signals.STOP_SIGNALS}
    signals.install_handlers()
    yield
    signals.reset()
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_after_the_step_and_the_resumed_fit_is_exact(handlers, sig):
    whole = make_trainer()
    whole.fit()

    stop = SignalAtStep(at=13, sig=sig, repeat=2)  # the second signal (as MLflow's launcher sends) is ignored
    with pytest.raises(signals.Interrupted) as info:
        make_trainer(callbacks=[stop]).fit()
    assert info.value.signal_name == signal.Signals(sig).name
    assert info.value.exit_code == 128 + sig
    state = stop.saved
    assert state["global_step"] == 13 and state["epoch"] == 1 and state["step_in_epoch"] == 3

    signals.reset()
    resumed = make_trainer(seed=5)  # another seed: everything must come from the checkpoint
    resumed.load_state_dict(state)
    logs = resumed.fit()
    assert resumed.global_step == 2 * STEPS_PER_EPOCH
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert logs["train_loss"] == pytest.approx(whole.history[-1]["train_loss"], rel=1e-5)


def test_a_signal_outside_the_training_steps_stops_at_once(handlers):
    class SignalInEvaluation:
        def __call__(self, model):
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("the signal did not stop the evaluation")

    stop = SignalAtStep(at=-1)
    trainer = make_trainer(callbacks=[stop])
    trainer.evaluate = SignalInEvaluation()
    with pytest.raises(signals.Interrupted):
        trainer.fit()
    # Every step of the epoch is done; a resume only re-runs the evaluation.
    assert stop.saved["step_in_epoch"] == STEPS_PER_EPOCH and stop.saved["epoch"] == 0


def test_a_non_finite_loss_is_one_error_naming_the_step():
    trainer = make_trainer(lr=1e30)
    with pytest.raises(TrainingError, match=r"loss is (nan|inf) at step \d+ \(epoch 1\).*lower lr"):
        trainer.fit()
    assert trainer.epoch == 0  # no epoch (and so no checkpoint) completed with the diverged weights


def test_train_loss_step_is_logged_every_epoch_and_a_resume_logs_no_step_twice():
    with mlflow.start_run() as run:
        logger = MLflowLogger(run.info.run_id)
        first = make_trainer(epochs=1, callbacks=[logger])
        first.fit()
        state = first.state_dict()
        # As a killed process would: steps logged after the last checkpoint, then a resume from it.
        MlflowClient().log_metric(run.info.run_id, "train_loss_step", 1.0, step=STEPS_PER_EPOCH + 3)

        class Restore(Callback):  # as the Checkpointer does: after the logger's on_fit_start
            def on_fit_start(self, trainer):
                trainer.load_state_dict(state)

        resumed = make_trainer(epochs=2, callbacks=[MLflowLogger(run.info.run_id), Restore()])
        resumed.fit()
    steps = [m.step for m in MlflowClient().get_metric_history(run.info.run_id, "train_loss_step")]
    assert sorted(steps) == sorted(set(steps)), "duplicate steps"
    # every 3 steps and at each epoch's end: 3, 6, 9, 10 | (12 replaced by 13), 15, 18, 20
    assert sorted(steps) == [3, 6, 9, 10, 13, 15, 18, 20]
    epochs = [m.step for m in MlflowClient().get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(epochs) == [1, 2]
