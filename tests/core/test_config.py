import pytest

from projects.core.config import parse_args, replace, run_key
from projects.core.errors import ConfigError
from projects.ssl.methods.simclr import Config


def test_cli_flags_are_typed():
    cfg = parse_args(Config, ["--lr", "0.3", "--epochs", "7", "--flip", "false", "--dataset", "stl10"])
    assert (cfg.lr, cfg.epochs, cfg.flip, cfg.dataset) == (0.3, 7, False, "stl10")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "imagenet"], "dataset='imagenet' is not allowed"),
        (["--fraction", "0"], "fraction must be in (0, 1]"),
        (["--fraction", "1.5"], "fraction must be in (0, 1]"),
        (["--lr", "-1"], "lr must be > 0"),
        (["--batch_size", "0"], "batch_size must be > 0"),
        (["--temperature", "0"], "temperature must be > 0"),
        (["--head", "transformer"], "head='transformer' is not allowed"),
        (["--epochs", "2.5"], "epochs must be of type int"),
        (["--split", "train+unlabeled"], "does not exist for cifar10"),
    ],
)
def test_bad_parameters_fail_with_one_line(argv, message):
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")
    ):
        parse_args(Config, argv)


def test_replace_revalidates_and_run_key_ignores_execution_only_fields():
    cfg = Config()
    assert run_key(replace(cfg, num_workers=0), "simclr") == run_key(cfg, "simclr")
    assert run_key(replace(cfg, lr=0.5), "simclr") != run_key(cfg, "simclr")
    with pytest.raises(ConfigError):
        replace(cfg, temperature=-1)


def test_passwords_in_urls_are_redacted_from_params():
    from projects.core.tracking import redact

    assert redact("postgresql://optuna:s3cret@db:5432/studies") == "postgresql://optuna:***@db:5432/studies"
    assert redact("postgresql://optuna@db/studies") == "postgresql://optuna@db/studies"
    assert redact("studies/optuna-journal.log") == "studies/optuna-journal.log"
