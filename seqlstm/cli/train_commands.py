"""`seqlstm train TASK`: train a model with one of the recipes (seqlstm.recipes).

    seqlstm train ner --config smoke --data-dir ../shared/data/conll2003
    seqlstm train ner --config cpu --print-config > ner.yaml     # every setting, to edit
    seqlstm train ner --config ner.yaml --seed 2                 # a file, then options
    seqlstm train ner --help                                     # every option of the task

TASK picks the recipe; everything after it is the recipe's own command line
(seqlstm.experiment.recipe_args): ``--config NAME|FILE`` (a shipped config or a YAML file;
``--preset NAME`` is the same as ``--config NAME``), ``--FIELD VALUE`` for each setting,
``--print-config``, and the common ``--dataset``/``--data-dir``, ``--out``, ``--seed`` and
``--device``. The run is the one ``python -m seqlstm.recipes.MODULE`` makes with the same
options. The recipe is imported only when the command runs, so ``seqlstm --help`` stays fast.
"""

import argparse
import importlib

from seqlstm.cli.command import Command
from seqlstm.recipes import TASKS, shipped_configs


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    width = max(len(task) for task in TASKS)
    lines = [
        f"  {task:<{width}}  {what}\n  {'':<{width}}  --config {'|'.join(shipped_configs(task))}"
        for task, (_module, what) in TASKS.items()
    ]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "tasks and their shipped configs (full is the default):\n"
        + "\n".join(lines)
        + "\n\n`seqlstm train TASK --help` lists the options of a task; --print-config writes "
        "every\nsetting of a run as YAML, to edit and pass back with --config FILE."
    )
    parser.add_argument("task", choices=list(TASKS), metavar="TASK", help="what to train")
    parser.add_argument(
        "options",
        nargs=argparse.REMAINDER,
        metavar="OPTIONS",
        help="the task's options: --config NAME|FILE, --FIELD VALUE ..., --print-config",
    )


def _train(args: argparse.Namespace) -> None:
    module_name, _what = TASKS[args.task]
    recipe = importlib.import_module(f"seqlstm.recipes.{module_name}")
    recipe.main(list(args.options), prog=f"seqlstm train {args.task}")


COMMANDS = [
    Command(
        "train",
        "train a model with a recipe, from a YAML config and options",
        _train_arguments,
        _train,
    )
]
