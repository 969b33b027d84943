"""Every SSL method on the shared base: its loss trains the online network only, the momentum target follows
by EMA on the cosine schedule, its views are the paper's, and a stopped + resumed pretraining (momentum
encoder included) equals an uninterrupted one."""

from __future__ import annotations

import signal

import pytest
import torch

from projects.core import signals
from projects.core.config import from_dict
from projects.core.loop import resolve_device
from projects.core.optim import create_optimizer
from projects.core.trainer_factory import create_trainer
from projects.ssl.methods import method_module, method_names
from projects.ssl.methods.base import MomentumMethod, MomentumUpdate
from projects.ssl.pretrain import build, create_encoder
from tests.core.test_interrupts import SignalAtStep, handlers  # noqa: F401 (fixture)

SMALL = {"proj_hidden_dim": 64, "proj_dim": 32, "pred_hidden_dim": 64}
TINY_RUN = {
    "dataset": "synthetic",
    "fraction": 0.02,
    "batch_size": 16,
    "epochs": 2,
    "stem": "imagenet",  # 32 px -> 8 px after the stem: cheap on CPU
    "monitor_bank": 50,
    "warmup_fraction": 0,
    "precision": "fp32",
    "device": "cpu",
    "num_workers": 0,
    "register": False,
}


def config(method: str, **values):
    cls = method_module(method).Config
    extra = {k: v for k, v in SMALL.items() if k in cls.__dataclass_fields__}
    return from_dict(cls, {**TINY_RUN, **extra, **values})


def method_class(method: str):
    module = method_module(method)
    return next(
        v for v in vars(module).values() if getattr(v, "name", None) == method and isinstance(v, type)
    )


def test_the_registry_lists_the_method_files():
    assert {"simclr", "byol", "mocov3"} <= set(method_names())
    with pytest.raises(Exception, match="method='nope' is not allowed"):
        method_module("nope")


@pytest.mark.parametrize("method", ["simclr", "byol", "mocov3"])
def test_the_loss_trains_the_online_network_and_never_the_target(method):
    cfg = config(method)
    torch.manual_seed(0)
    model = method_class(method).from_config(cfg, create_encoder(cfg)).train()
    v1, v2 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)
    loss = model.loss(v1, v2)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    momentum = [n for n, _ in model.named_parameters() if n.startswith("momentum_")]
    assert bool(momentum) == isinstance(model, MomentumMethod)
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.startswith("momentum_"))
    optimised = {
        id(p) for group in create_optimizer(model, "adamw", 1e-3, 1e-4).param_groups for p in group["params"]
    }
    assert all((id(p) in optimised) != n.startswith("momentum_") for n, p in model.named_parameters())
    assert any(k.startswith("momentum_encoder.") for k in model.state_dict()) == bool(momentum)


@pytest.mark.parametrize("method", ["byol", "mocov3"])
def test_momentum_follows_the_cosine_schedule_and_the_ema_formula(method):
    cfg = config(method, momentum_base=0.9, momentum_final=1.0)
    model = method_class(method).from_config(cfg, create_encoder(cfg))
    assert model.momentum(0.0) == pytest.approx(0.9)
    assert model.momentum(0.5) == pytest.approx(0.95)
    assert model.momentum(1.0) == pytest.approx(1.0)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = {n: p.clone() for n, p in model.momentum_encoder.named_parameters()}
    online = dict(model.encoder.named_parameters())
    tau = model.update_momentum(0.5)
    for name, xi in model.momentum_encoder.named_parameters():
        assert torch.allclose(xi, tau * before[name] + (1 - tau) * online[name], atol=1e-6)


def test_mocov3_takes_a_vit_encoder():
    cfg = config("mocov3", arch="vit_d192_l25")
    model = method_class("mocov3").from_config(cfg, create_encoder(cfg))
    assert torch.isfinite(model.loss(torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)))


def test_views_are_symmetric_for_simclr_and_asymmetric_for_byol_and_mocov3():
    first, second = config("simclr").views()
    assert first == second and first.solarize_p == 0
    for method in ("byol", "mocov3"):
        first, second = config(method, blur=True).views()
        assert (first.blur_p, second.blur_p) == (1.0, 0.1)
        assert (first.solarize_p, second.solarize_p) == (0.0, 0.2)
        assert first.jitter == pytest.approx((0.4, 0.4, 0.2, 0.1))
    setup = build(config("byol"), method_class("byol"), torch.device("cpu"))
    assert len(setup.batch_transform.augments) == 2
    assert any(isinstance(c, MomentumUpdate) for c in setup.callbacks)


def trainer_for(cfg, setup, callbacks=()):
    """The Trainer an entry point would run for ``setup``, without the MLflow callbacks."""
    args = setup.trainer_args()
    return create_trainer(
        cfg,
        setup.model,
        args.pop("train_loader"),
        args.pop("step_fn"),
        device=torch.device("cpu"),
        callbacks=[*setup.callbacks, *callbacks],
        progress=False,
        **args,
    )


def fitted(method: str, callbacks=(), state=None):
    cfg = config(method)
    trainer = trainer_for(cfg, build(cfg, method_class(method), resolve_device("cpu")), callbacks)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit()
    return trainer


def test_a_stopped_and_resumed_byol_run_equals_an_uninterrupted_one(handlers):  # noqa: F811
    whole = fitted("byol")
    steps = whole.global_step
    stop = SignalAtStep(at=steps // 2 + 1, sig=signal.SIGTERM)
    with pytest.raises(signals.Interrupted):
        fitted("byol", callbacks=[stop])
    signals.reset()
    resumed = fitted("byol", state=stop.saved)
    assert resumed.global_step == steps
    whole_state, resumed_state = whole.model.state_dict(), resumed.model.state_dict()
    assert any(k.startswith("momentum_encoder.") for k in whole_state)
    for key, value in whole_state.items():
        assert torch.allclose(value.float(), resumed_state[key].float(), atol=1e-5), key


def test_simclr_on_stl10_train_plus_unlabeled_leaves_the_labelled_split_alone(tmp_path):
    from projects.core.data import load_split
    from projects.core.evaluate import extract_features
    from tests.core.test_data import write_stl10

    write_stl10(tmp_path, train=40, test=10, unlabeled=30)
    cfg = config(
        "simclr",
        dataset="stl10",
        split="train+unlabeled",
        data_dir=str(tmp_path),
        download=False,
        fraction=1.0,
        image_size=32,
        batch_size=8,
        epochs=1,
        val_fraction=0.25,
    )
    before = load_split("stl10", "train", tmp_path, download=False)
    setup = build(cfg, method_class("simclr"), torch.device("cpu"))
    assert len(setup.pretrain) == 30 + 30  # 3/4 of the labelled images + every unlabelled one
    assert (setup.pretrain.labels == -1).sum() == 30
    _, bank_labels = extract_features(setup.model.encoder, setup.monitor.bank, torch.device("cpu"))
    assert bank_labels.min() >= 0 and (setup.val.labels >= 0).all()
    after = load_split("stl10", "train", tmp_path, download=False)
    assert len(after) == len(before) == 40 and (after.labels >= 0).all()
    with pytest.raises(ValueError):
        setup.pretrain.labels[0] = 3  # splits are read-only
    trainer = trainer_for(cfg, setup)
    logs = trainer.fit()
    assert torch.isfinite(torch.tensor(logs["train_loss"])) and 0 <= logs["probe_top1"] <= 100
