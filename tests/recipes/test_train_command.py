"""`seqlstm train TASK`: the task registry, the shipped configs and --print-config.

Nothing here trains (the NER smoke run through `seqlstm train` is in test_conll2003_ner.py).
"""

import dataclasses
import fnmatch
import importlib
import subprocess
import sys

import pytest
import yaml
from locations import ROOT

from seqlstm import cli
from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import config_yaml, parse_recipe_args, read_config_file
from seqlstm.recipes import CONFIGS, TASKS, shipped_configs

COMMON = ("dataset", "data_dir", "out", "seed", "device")


def recipe_of(task: str):
    """(the recipe module, its config dataclass) of a task."""
    module = importlib.import_module(f"seqlstm.recipes.{TASKS[task][0]}")
    (config_class,) = [
        value
        for value in vars(module).values()
        if dataclasses.is_dataclass(value) and value.__module__ == module.__name__
    ]
    return module, config_class


def printed_config(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *argv, "--print-config"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_every_task_has_a_recipe_and_full_cpu_smoke_configs():
    assert list(TASKS) == ["ner", "translation", "lm", "char-lm", "image-rows", "forecast"]
    shipped = {path.parent.name for path in CONFIGS.glob("*/*.yaml")}
    assert shipped == set(TASKS)  # no config folder without a task
    for task in TASKS:
        module, _ = recipe_of(task)
        assert {"full", "cpu", "smoke"} <= set(shipped_configs(task))
        assert shipped_configs(task) == module.PRESETS
    with pytest.raises(KeyError, match="no task 'pos'"):
        shipped_configs("pos")


@pytest.mark.parametrize("task", list(TASKS))
def test_every_shipped_config_parses_into_its_recipes_dataclass(task):
    module, config_class = recipe_of(task)
    for name, path in shipped_configs(task).items():
        settings = read_config_file(path, config_class)
        args = parse_recipe_args(config_class, module.PRESETS, ["--config", name])
        assert isinstance(args.config, config_class) and args.preset == name
        for key, value in settings.items():  # each setting of the file took effect
            assert (getattr(args, key) if key in COMMON else getattr(args.config, key)) == value
        # budgets in steps or epochs, not minutes: the same command trains the same model
        assert args.config.max_time_minutes is None
    cpu = parse_recipe_args(config_class, module.PRESETS, ["--config", "cpu"])
    smoke = parse_recipe_args(config_class, module.PRESETS, ["--config", "smoke"])
    assert cpu.device == smoke.device == "cpu"


def test_the_shipped_configs_are_package_data():
    # pip install (not only a source checkout) must bring them: the patterns cover each file
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["seqlstm.recipes"]
    package = ROOT / "seqlstm" / "recipes"
    for path in CONFIGS.glob("*/*.yaml"):
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative
    assert any(line.startswith("pyyaml") for line in pyproject["project"]["dependencies"])


@pytest.mark.parametrize("task", list(TASKS))
def test_print_config_round_trip(task, tmp_path, capsys):
    module, config_class = recipe_of(task)
    names = sorted(shipped_configs(task))
    for name in names:
        argv = [task, "--config", name, "--seed", "3", "--out", str(tmp_path / "run")]
        text = printed_config(capsys, argv)
        settings = yaml.safe_load(text)
        fields = [f.name for f in dataclasses.fields(config_class)]
        assert set(settings) == set(COMMON) | set(fields)  # every setting, each once
        assert settings["seed"] == 3 and settings["out"] == str(tmp_path / "run")
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        # read back, it is the same run, and prints the same text
        expected = parse_recipe_args(config_class, module.PRESETS, argv[1:])
        again = parse_recipe_args(config_class, module.PRESETS, ["--config", str(path)])
        assert again.config == expected.config
        assert [getattr(again, n) for n in COMMON] == [getattr(expected, n) for n in COMMON]
        assert printed_config(capsys, [task, "--config", str(path)]) == text
        assert config_yaml(again) == text


def test_options_override_a_config_file_through_the_command(tmp_path, capsys):
    path = tmp_path / "ner.yaml"
    path.write_text("hidden_size: 32\nlr: 2e-3\ndevice: cpu\n", encoding="utf-8")
    settings = yaml.safe_load(printed_config(capsys, ["ner", "--config", str(path), "--lr", "0.5"]))
    assert (settings["hidden_size"], settings["lr"], settings["device"]) == (32, 0.5, "cpu")
    # --preset is --config NAME, as in the commands of docs/RESULTS.md
    by_preset = printed_config(capsys, ["ner", "--preset", "smoke"])
    assert by_preset == printed_config(capsys, ["ner", "--config", "smoke"])


def test_bad_config_files_end_the_command_with_one_line(tmp_path, capsys):
    path = tmp_path / "ner.yaml"
    path.write_text("hidden_size: 32\nhiden_size: 0.1\n", encoding="utf-8")
    assert cli.main(["train", "ner", "--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"seqlstm train: error: {path}: unknown key 'hiden_size'; did you mean "
        "'hidden_size'? (--print-config lists every key)\n"
    )
    path.write_text("hidden_size: two hundred\n", encoding="utf-8")
    assert cli.main(["train", "ner", "--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"seqlstm train: error: {path}: hidden_size: expected an integer, got 'two hundred'\n"
    )
    with pytest.raises(DataError, match="no such file"):
        importlib.import_module("seqlstm.recipes.conll2003_ner").main(
            ["--config", str(tmp_path / "missing.yaml")]
        )


def test_help_lists_the_tasks_and_imports_no_recipe(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for task, (_, what) in TASKS.items():
        assert f"  {task}" in out and what in out
    assert "--config cpu|demo|full|smoke" in out  # char-lm's configs
    with pytest.raises(SystemExit):
        cli.main(["train", "forecast", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: seqlstm train forecast") and "--window WINDOW" in out
    # the recipes, and torch, are imported only when a train command runs
    code = (
        "import sys, seqlstm.cli; seqlstm.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith('seqlstm.recipes.') or m == 'torch'))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout == "[]\n", loaded.stderr
