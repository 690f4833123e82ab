from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from seqlstm.experiment.recipe_args import config_from, parse_recipe_args
from seqlstm.training import TrainerConfig


@dataclass
class RecipeConfig:
    hidden_size: int = 256
    lr: float = 1e-3
    use_crf: bool = True
    char_cnn: bool = False
    scheme: Literal["IOB1", "IOB2", "IOBES"] = "IOB2"
    max_epochs: int | None = None
    layers: tuple[int, ...] = (2, 3)
    betas: tuple[float, float] = (0.9, 0.999)
    tags: list[str] = field(default_factory=lambda: ["a"])
    vectors: Path | None = None
    seed: int = 42
    batch_tokens: int = field(default=1000, metadata={"help": "tokens per batch"})

    def __post_init__(self):
        if self.hidden_size <= 0:
            raise ValueError(f"hidden_size must be positive, got {self.hidden_size}")


PRESETS = {
    "full": {},
    "cpu": {"hidden_size": 64, "lr": 0.01, "layers": [1]},
    "smoke": {"hidden_size": 8, "max_epochs": 1, "device": "cpu"},
}


def parse(*argv, presets=PRESETS):
    return parse_recipe_args(RecipeConfig, presets, list(argv), default_out="runs/test")


def parse_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_defaults_without_options():
    args = parse()
    assert args.config == RecipeConfig()
    assert args.preset == "full"
    assert (args.dataset, args.data_dir, args.out) == (None, None, Path("runs/test"))
    assert (args.seed, args.device) == (42, "auto")  # the config's own seed field wins over 0
    assert parse(presets={"cpu": {}}).preset is None  # no "full" preset: plain defaults


def test_precedence_default_then_preset_then_explicit():
    cpu = parse("--preset", "cpu").config
    assert (cpu.hidden_size, cpu.lr, cpu.layers, cpu.batch_tokens) == (64, 0.01, (1,), 1000)
    explicit = parse("--hidden-size", "100", "--preset", "cpu").config
    assert (explicit.hidden_size, explicit.lr) == (100, 0.01)
    smoke = parse("--preset", "smoke")
    assert (smoke.config.max_epochs, smoke.device) == (1, "cpu")
    assert parse("--preset", "smoke", "--device", "auto").device == "auto"


def test_typed_values_and_both_spellings():
    args = parse(
        "--lr", "3e-4", "--max_epochs", "5", "--layers", "1", "2", "3", "--betas", "0.5", "0.6",
        "--tags", "x", "y", "--vectors", "glove.txt", "--scheme", "IOBES", "--batch-tokens", "9",
    )  # fmt: skip
    config = args.config
    assert config.lr == 3e-4 and config.max_epochs == 5 and config.batch_tokens == 9
    assert config.layers == (1, 2, 3) and config.betas == (0.5, 0.6)
    assert config.tags == ["x", "y"] and config.vectors == Path("glove.txt")
    assert config.scheme == "IOBES"
    assert parse("--max-epochs", "none").config.max_epochs is None
    common = parse("--data-dir", "data", "--out", "o", "--seed", "7")
    assert (common.data_dir, common.out, common.seed, common.config.seed) == (
        Path("data"),
        Path("o"),
        7,
        7,
    )
    assert parse("--dataset", "eriktks/conll2003").dataset == "eriktks/conll2003"


@pytest.mark.parametrize(
    ("argv", "use_crf", "char_cnn"),
    [
        ((), True, False),
        (("--no-use-crf",), False, False),
        (("--no_use_crf", "--char-cnn"), False, True),
        (("--use-crf", "false", "--char_cnn", "true"), False, True),
        (("--char-cnn", "--use-crf", "no"), False, True),
        (("--no-char-cnn", "--use-crf"), True, False),
    ],
)
def test_bool_flags(argv, use_crf, char_cnn):
    config = parse(*argv).config
    assert (config.use_crf, config.char_cnn) == (use_crf, char_cnn)


def test_bad_values_exit_with_argparse_errors(capsys):
    err = parse_error(capsys, "--scheme", "BIO")
    assert "invalid choice: 'BIO'" in err and "IOBES" in err
    assert "invalid int value: 'abc'" in parse_error(capsys, "--hidden-size", "abc")
    assert "expected true or false" in parse_error(capsys, "--use-crf", "maybe")
    assert "invalid choice" in parse_error(capsys, "--preset", "huge")
    assert "not allowed with" in parse_error(capsys, "--dataset", "x", "--data-dir", "y")
    assert "hidden_size must be positive" in parse_error(capsys, "--hidden-size", "0")


def test_unknown_option_lists_valid_ones(capsys):
    err = parse_error(capsys, "--hiden-size", "3")
    assert "unrecognized arguments: --hiden-size 3" in err
    assert "did you mean --hidden-size" in err
    assert "valid options:" in err and "--batch-tokens" in err and "--preset" in err
    # no silent prefix matching
    assert "unrecognized arguments: --hidden" in parse_error(capsys, "--hidden", "3")


def test_bad_presets_and_required_fields(capsys):
    with pytest.raises(ValueError, match=r"preset 'cpu' sets unknown options \['hidden'\]"):
        parse(presets={"cpu": {"hidden": 3}})

    @dataclass
    class NeedsPath:
        path: str
        size: int = 1

    with pytest.raises(SystemExit):
        parse_recipe_args(NeedsPath, {}, [])
    assert "--path is required" in capsys.readouterr().err
    assert parse_recipe_args(NeedsPath, {}, ["--path", "p"]).config == NeedsPath("p")


def test_help_shows_every_field_and_default(capsys):
    with pytest.raises(SystemExit):
        parse("--help")
    out = capsys.readouterr().out
    for option in ("--hidden-size", "--no-use-crf", "--max-epochs", "--layers", "--preset"):
        assert option in out
    assert "tokens per batch (default: 1000)" in out
    assert "(default: 42)" in out  # --seed shows the config's seed default


def test_config_from_takes_the_shared_fields_and_the_fixed_values():
    cfg = RecipeConfig(lr=0.5, max_epochs=7, betas=(0.8, 0.9))
    config = config_from(
        TrainerConfig, cfg, output_dir="out/trainer", metric="f1", metric_mode="max"
    )
    # lr, max_epochs, betas and seed are TrainerConfig fields; hidden_size, use_crf ... are not
    expected = TrainerConfig(
        output_dir="out/trainer",
        lr=0.5,
        max_epochs=7,
        betas=(0.8, 0.9),
        seed=42,
        metric="f1",
        metric_mode="max",
    )
    assert config == expected

    @dataclass
    class ModelConfig:
        num_classes: int
        hidden_size: int = 1
        use_crf: bool = False

    assert config_from(ModelConfig, cfg, num_classes=3) == ModelConfig(3, 256, True)
    with pytest.raises(TypeError, match=r"\['lr'\] are options of RecipeConfig"):
        config_from(TrainerConfig, cfg, lr=1.0)
    with pytest.raises(TypeError, match="no_such_setting"):
        config_from(TrainerConfig, cfg, no_such_setting=1)
