import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import (
    config_from,
    config_yaml,
    parse_recipe_args,
    read_config_file,
)
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


# ----------------------------------------------------------------------------- config files


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_sits_between_the_defaults_and_the_explicit_options(tmp_path):
    config = write(
        tmp_path / "run.yaml",
        "# a comment\nhidden_size: 32\nlr: 1e-2\nlayers: [4, 5]\nvectors: glove.txt\n"
        "use_crf: false\nbetas: [0.5, 1]\nscheme: IOBES\nmax_epochs: null\n"
        "data_dir: data\nout: runs/x\nseed: 9\ndevice: cpu\n",
    )
    args = parse("--config", str(config))
    c = args.config
    # from the file, typed as the fields declare: "1e-2" is text to YAML 1.1, a float here
    assert (c.hidden_size, c.lr, c.layers, c.vectors) == (32, 0.01, (4, 5), Path("glove.txt"))
    assert (c.use_crf, c.betas, c.scheme, c.max_epochs) == (False, (0.5, 1.0), "IOBES", None)
    assert type(c.betas[1]) is float and type(c.lr) is float
    assert (args.data_dir, args.out, args.seed, c.seed, args.device) == (
        Path("data"),
        Path("runs/x"),
        9,
        9,
        "cpu",
    )
    # untouched fields keep their defaults; the "full" preset does not apply under a file
    assert (c.batch_tokens, c.tags) == (1000, ["a"])
    assert (args.preset, args.config_file) == (None, config)
    # explicit options win over the file, in any order
    over = parse("--hidden-size", "7", "--config", str(config), "--seed", "1", "--use-crf")
    assert (over.config.hidden_size, over.seed, over.config.use_crf, over.config.lr) == (
        7,
        1,
        True,
        0.01,
    )
    # --dataset and --data-dir are one choice: the option replaces the file's data_dir
    hub = parse("--config", str(config), "--dataset", "eriktks/conll2003")
    assert (hub.dataset, hub.data_dir) == ("eriktks/conll2003", None)


def test_an_empty_config_file_gives_the_defaults(tmp_path):
    args = parse("--config", str(write(tmp_path / "empty.yaml", "# nothing set\n")))
    assert args.config == RecipeConfig() and args.out == Path("runs/test")


def test_config_names_a_preset_and_preset_still_works(tmp_path):
    assert parse("--config", "cpu").config == parse("--preset", "cpu").config
    assert parse("--config", "cpu").preset == "cpu"
    # a preset may be a YAML file, read only when chosen: a broken one elsewhere is not read
    presets = {
        "full": {},
        "small": write(tmp_path / "small.yaml", "hidden_size: 4\n"),
        "broken": write(tmp_path / "broken.yaml", "hidden_size: [\n"),
    }
    small = parse("--preset", "small", presets=presets)
    assert small.config.hidden_size == 4 and small.preset == "small"
    assert small.config_file == tmp_path / "small.yaml"
    assert parse(presets=presets).config == RecipeConfig()


def test_config_and_preset_together_is_an_argparse_error(capsys):
    assert "not allowed with" in parse_error(capsys, "--config", "cpu", "--preset", "smoke")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hiden_size: 3\n", "unknown key 'hiden_size'; did you mean 'hidden_size'?"),
        ("hidden-size: 3\n", "unknown key 'hidden-size'; did you mean 'hidden_size'?"),
        ("colour: red\n", "unknown key 'colour' (--print-config lists every key)"),
        ("hidden_size: 1.5\n", "hidden_size: expected an integer, got 1.5"),
        ("hidden_size: true\n", "hidden_size: expected an integer, got True"),
        ("use_crf: 'yes'\n", "use_crf: expected true or false, got 'yes'"),
        ("lr: fast\n", "lr: expected a number, got 'fast'"),
        ("scheme: BIO\n", "scheme: expected one of 'IOB1', 'IOB2', 'IOBES', got 'BIO'"),
        ("max_epochs: many\n", "max_epochs: expected an integer or null, got 'many'"),
        ("betas: [0.9]\n", "betas: expected a list of 2 numbers, got [0.9]"),
        ("layers: 3\n", "layers: expected a list of integers, got 3"),
        ("hidden_size: null\n", "hidden_size: expected an integer, got None"),
        ("vectors: 3\n", "vectors: expected a path (a string) or null, got 3"),
        ("device: tpu\n", "device: expected one of 'auto', 'cpu', 'cuda', 'mps', got 'tpu'"),
        ("seed: '7'\n", "seed: expected an integer, got '7'"),
        ("dataset: x\ndata_dir: y\n", "sets both dataset and data_dir"),
        ("- hidden_size\n", "expected a mapping of settings (name: value), got a list"),
        ("lr: 1\nhidden_size: [\n", ", line 3: not valid YAML"),
    ],
)
def test_a_bad_config_file_is_a_data_error_naming_the_file_and_key(tmp_path, text, message):
    config = write(tmp_path / "bad.yaml", text)
    with pytest.raises(DataError) as error:
        parse("--config", str(config))
    assert str(error.value).startswith(f"{config}") and message in str(error.value)


def test_a_missing_config_file_names_the_shipped_configs(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(DataError, match="no such file, and no shipped config of that name"):
        parse("--config", str(missing))
    with pytest.raises(DataError, match=r"--config smok: .*\(shipped: cpu, full, smoke\)"):
        parse("--config", "smok")
    with pytest.raises(DataError, match="no such config file"):
        read_config_file(missing, RecipeConfig)


def test_the_configs_own_check_names_the_file(tmp_path, capsys):
    config = write(tmp_path / "zero.yaml", "hidden_size: 0\n")
    err = parse_error(capsys, "--config", str(config))
    assert f"hidden_size must be positive, got 0 (settings of {config})" in err


def test_print_config_writes_every_setting_and_reads_back_to_the_same_run(tmp_path, capsys):
    argv = [
        "--preset",
        "cpu",
        "--lr",
        "3e-4",
        "--vectors",
        "v.txt",
        "--data-dir",
        "d",
        "--seed",
        "5",
    ]
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv, "--print-config")
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    settings = yaml.safe_load(text)
    # every field and common option, once, the common options first
    fields = [f.name for f in dataclasses.fields(RecipeConfig)]
    assert list(settings) == ["dataset", "data_dir", "out", "seed", "device"] + [
        name for name in fields if name != "seed"
    ]
    assert settings["lr"] == 3e-4 and settings["layers"] == [1] and settings["vectors"] == "v.txt"
    assert (settings["data_dir"], settings["seed"], settings["dataset"]) == ("d", 5, None)
    expected = parse(*argv)
    again = parse("--config", str(write(tmp_path / "run.yaml", text)))
    assert again.config == expected.config
    common = ("dataset", "data_dir", "out", "seed", "device")
    assert [getattr(again, n) for n in common] == [getattr(expected, n) for n in common]
    assert config_yaml(again) == config_yaml(expected) == text


def test_the_command_is_recorded_as_typed_with_the_program_that_runs_it():
    """results.json records ``args.command``: the recipe's module run with ``python -m``, or
    the ``prog`` a caller names (``seqlstm train ner``), then the arguments, shell-quoted."""
    args = parse("--preset", "smoke", "--out", "runs/a b")
    assert args.command == f"python -m {RecipeConfig.__module__} --preset smoke --out 'runs/a b'"
    named = parse_recipe_args(RecipeConfig, PRESETS, ["--seed", "3"], prog="seqlstm train x")
    assert named.command == "seqlstm train x --seed 3"
