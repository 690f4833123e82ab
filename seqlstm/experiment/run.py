"""The run skeleton that every recipe shares, written once.

A recipe keeps only what is its own (its data, model, batches and metrics); ``main`` reads

    run = RecipeRun.start(NERConfig, PRESETS, argv, __doc__, "runs/conll2003_ner")
    source = run.source(HUB_ID)                    # --data-dir, else --dataset, else HUB_ID
    rows = read_rows(source, run.config)           # the task's data, as plain rows
    run.begin("named-entity recognition", source, rows)
    model, batches = ...
    best = run.fit(model, batches, evaluate, metric="f1", metric_mode="max")
    return run.finish({"valid": best, "test": model.evaluate(rows["test"])})

- ``start`` parses the command line (``seqlstm.experiment.recipe_args``) and picks the device
  by the one rule of ``seqlstm.training.device`` (under ``torchrun``, this process's GPU).
- The recipe reads its data before ``begin``, so bad data fails before OUT is created.
- ``begin`` fingerprints that data (``data_fingerprint``), joins the process group under
  ``torchrun`` (so that the batch sources built after it shard by rank), starts the
  ``RunRecorder`` (OUT, OUT/train.log and the clock; rank 0 only), writes OUT/config.yaml
  (every setting of the run: ``--config OUT/config.yaml`` runs it again), seeds every random
  generator with ``--seed`` and sets torch's CPU threads (``RunSettings.threads``).
- ``fit`` trains with ``trainer_config`` and saves the model to OUT/model; ``finish`` writes
  OUT/results.json and OUT/results.md. Under ``torchrun`` only rank 0 writes any file.

One writer per OUT. Rank 0 holds the lock of OUT (``seqlstm.atomic_files.lock_directory``:
``flock`` on OUT/.lock, dropped by the system when the process ends, ``kill -9`` included)
from ``start`` (when OUT exists already; otherwise from ``begin``) to the end of ``finish``.
A second run on the same OUT therefore fails at once - before it writes anything - with one
line naming OUT and the holder (pid, host, start time), exit status 2 through ``run_recipe``.
Under the lock ``begin`` also checks what OUT holds:

- an earlier run (checkpoints in OUT/trainer, or OUT/results.json) is continued only with
  ``--resume true`` (recipes that have the option); otherwise the run stops with one line
  saying so, rather than mixing two runs' checkpoints;
- a finished run (OUT/results.json written and its last checkpoint at a budget - steps,
  epochs, time or early stopping - that this command does not raise) is an error with
  ``--resume true`` too: there is nothing to resume (raise the budget to train on);
- what a killed run left - staging directories of OUT/model (``.tmp-model-*``), files of
  interrupted atomic writes - is deleted (the Trainer does the same in OUT/trainer); a
  resumed run appends to OUT/train.log.

A recipe run as a script ends with ``sys.exit(run_recipe(main))``: bad input (DataError,
CheckpointError) then ends it with one line on stderr and exit status 2, as in the ``seqlstm``
command line, instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import nn

from seqlstm.atomic_files import (
    DirectoryLock,
    lock_directory,
    remove_temporaries,
    write_text_atomic,
)
from seqlstm.errors import CheckpointError, DataError, one_line
from seqlstm.experiment.recipe_args import (
    Preset,
    RecipeArgs,
    config_from,
    config_yaml,
    parse_recipe_args,
)
from seqlstm.tasks.base import Row, TaskModel
from seqlstm.training import (
    BatchSource,
    DistributedContext,
    Trainer,
    TrainerConfig,
    seed_everything,
)
from seqlstm.training.checkpoint import CheckpointManager
from seqlstm.training.distributed import destroy_distributed, init_distributed
from seqlstm.training.trainer import checkpoint_directory, finished_checkpoint

C = TypeVar("C")

logger = logging.getLogger(__name__)

# Metrics that count things. The Trainer hands every validation metric back as a float;
# `RecipeRun.fit` turns these back into integers.
COUNT_METRICS = ("tokens", "characters", "words", "examples", "origins")
TRAINER_DIR = "trainer"  # OUT/trainer: the Trainer's output_dir (checkpoints, metrics.jsonl)


# --------------------------------------------------------------------------- the run


@dataclasses.dataclass
class RunSettings:
    """The settings every recipe has; a recipe's config dataclass extends this one (and may
    give its fields other defaults). Training stops at the first budget reached."""

    max_epochs: int | None = None
    max_steps: int | None = None
    # wall clock: on a busy machine the same command trains less, so presets count steps/epochs
    max_time_minutes: float | None = None
    eval_every_steps: int | None = None  # None: after every epoch
    threads: int | None = None  # torch's CPU threads (None: its default)
    # continue the run in OUT from its latest checkpoint (OUT/trainer); exact on the CPU: the
    # resumed run ends with the weights of the uninterrupted one
    resume: bool = False


class RecipeRun(Generic[C]):
    """One run of a recipe: its arguments, device, recorder and results (module docstring)."""

    def __init__(self, args: RecipeArgs[C], context: DistributedContext) -> None:
        self.args = args
        self.context = context
        self.recorder: RunRecorder | None = None
        self.task = self.dataset = ""
        self.data_sha256: str | None = None
        self._owns_process_group = False
        self._started = time.perf_counter()
        self._lock: DirectoryLock | None = None  # of OUT, on rank 0 (module docstring)

    @classmethod
    def start(
        cls,
        config_cls: type[C],
        presets: Mapping[str, Preset],
        argv: Sequence[str] | None,
        description: str | None,
        default_out: str,
        prog: str | None = None,
    ) -> RecipeRun[C]:
        """Parse ``argv`` (see ``parse_recipe_args``: presets maps a name to its settings or
        YAML file, prog names the command) and resolve ``--device`` for this process.

        Raises:
            ValueError: ``--device`` names an accelerator this machine does not have.
        """
        args = parse_recipe_args(config_cls, presets, argv, default_out, description, prog)
        run = cls(args, DistributedContext.from_env(args.device))
        if run.is_main and run.out.is_dir():  # another run may be writing there: say so now
            run._lock = lock_directory(run.out)
        return run

    @property
    def config(self) -> C:
        return self.args.config

    @property
    def out(self) -> Path:
        return self.args.out

    @property
    def seed(self) -> int:
        return self.args.seed

    @property
    def device(self) -> torch.device:
        return self.context.device

    @property
    def is_main(self) -> bool:
        """Rank 0 (or the only process): the one that records, saves and writes files."""
        return self.context.is_main

    def source(self, default: str) -> str | Path:
        """Where the data comes from: ``--data-dir``, else ``--dataset``, else ``default``."""
        if self.args.data_dir is not None:
            return self.args.data_dir
        return self.args.dataset or default

    def begin(self, task: str, dataset: str | os.PathLike, data: Any) -> None:
        """Fingerprint ``data``, start recording (rank 0), seed the generators, set threads.

        task and dataset name the run in the results files; data is everything the recipe
        read, in the form ``data_fingerprint`` takes.
        """
        self.task, self.dataset = task, str(dataset)
        self.data_sha256 = data_fingerprint(data)
        # OUT is claimed before anything is written there, and before joining the process
        # group, so a refused run ends at once (under torchrun, torchrun then stops the rest)
        removed = self._claim_out() if self.is_main else []
        # Under torchrun the batch sources built next read num_replicas and rank from the
        # process group (seqlstm.data.batching.resolve_replicas), so it must exist before
        # them; the Trainer then uses it as it is, and `finish` leaves it.
        self._owns_process_group = init_distributed(self.context)
        if self.is_main:
            self.recorder = RunRecorder(
                self.out,
                task,
                self.dataset,
                self.config,
                self.seed,
                self.device,
                self._started,
                append_log=self._resuming,
                command=self.args.command,
            )
            if removed:
                logger.info(
                    "removed what an interrupted run left in %s: %s", self.out, ", ".join(removed)
                )
            # every setting, so that `--config OUT/config.yaml` runs it again
            write_text_atomic(self.out / "config.yaml", config_yaml(self.args))
        seed_everything(self.seed)
        if isinstance(self.config, RunSettings) and self.config.threads is not None:
            torch.set_num_threads(self.config.threads)

    @property
    def _resuming(self) -> bool:
        """Whether the recipe has a ``resume`` option and it is on."""
        return bool(getattr(self.config, "resume", False))

    def _claim_out(self) -> list[str]:
        """Lock OUT (unless ``start`` did), refuse the earlier or finished run it may hold
        (module docstring) and delete what a killed run left there; returns those names."""
        if self._lock is None:
            self._lock = lock_directory(self.out)
        try:
            self._check_earlier_run()
        except BaseException:
            self._release_out()
            raise
        return remove_temporaries(self.out)

    def _release_out(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _check_earlier_run(self) -> None:
        """CheckpointError when OUT holds a run that this one must not mix with: an earlier
        one without --resume, or a finished one with it."""
        results = self.out / "results.json"
        found = CheckpointManager(checkpoint_directory(self.out / TRAINER_DIR)).checkpoints()
        if not self._resuming:
            evidence = [f"checkpoints up to {found[-1]}"] if found else []
            evidence += [f"{results.name}"] if results.is_file() else []
            if evidence:
                has_option = any(f.name == "resume" for f in dataclasses.fields(self.config))
                continue_it = "pass --resume true to continue it, or " if has_option else ""
                raise CheckpointError(
                    f"{self.out} holds an earlier run ({', '.join(evidence)}); {continue_it}"
                    "choose another --out"
                )
            return
        if not results.is_file():
            return  # an unfinished run resumes; without checkpoints it starts afresh
        try:
            config = self.trainer_config()
        except (TypeError, ValueError):
            return  # `fit` names what is wrong with the settings
        finished = finished_checkpoint(config)
        if found and finished is None:
            return  # this command raised the budget: the run trains on
        if finished is None:
            why, remedy = "no checkpoint to resume from", ""
        else:
            why = f"its last checkpoint, {finished[0].name}, reached {finished[1]}"
            remedy = f"raise --{finished[1].replace('_', '-')} to train on, or "
            if finished[1] == "early_stopping":
                remedy = "raise --early-stopping-patience to train on, or "
        raise CheckpointError(
            f"{self.out} holds a finished run ({results.name} is written and {why}); there "
            f"is nothing to resume: {remedy}choose another --out"
        )

    def trainer_config(self, **fixed: Any) -> TrainerConfig:
        """See the module function ``trainer_config``."""
        return trainer_config(self.args, self.device, **fixed)

    def fit(
        self,
        model: nn.Module,
        batches: BatchSource,
        evaluate_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
        **fixed: Any,
    ) -> dict[str, float | int]:
        """Train ``model`` (a task model: ``model(batch)`` gives a StepOutput) on ``batches``
        and save it to OUT/model (rank 0).

        evaluate_fn(model) gives the validation metrics; fixed: TrainerConfig settings the
        recipe decides (metric, metric_mode ...). The model ends with the weights of the best
        checkpoint (the last ones without evaluate_fn), which are the ones saved. Returns
        their validation metrics, counts (``COUNT_METRICS``) as integers.
        """
        if not isinstance(model, TaskModel):
            raise TypeError(f"{type(model).__name__} does not follow seqlstm.tasks.base.TaskModel")
        parameters = sum(p.numel() for p in model.parameters())
        logger.info("%s with %s parameters", type(model).__name__, f"{parameters:,}")
        best = Trainer(model, self.trainer_config(**fixed), batches, evaluate_fn=evaluate_fn).fit()
        if self.is_main:
            model.save_pretrained(self.out / "model")
        return {k: int(v) if k in COUNT_METRICS else v for k, v in best.items()}

    def write_text(self, name: str, text: str, title: str | None = None) -> None:
        """OUT/name (UTF-8) on rank 0: the recipe's own outputs (translations, samples); with
        a title, also printed between ``--- title ---`` and ``---``."""
        if not self.is_main:
            return
        (self.out / name).write_text(text, encoding="utf-8")
        if title is not None:
            print(f"--- {title} ---")
            print(text, end="" if text.endswith("\n") else "\n")
            print("---")

    def finish(self, metrics: Mapping[str, Mapping[str, float]], **extra: Any) -> dict[str, Any]:
        """The results: metrics maps split ("valid", "test") to {name: value}; extra holds
        further JSON-able fields (e.g. sacreBLEU signatures). Rank 0 writes them to
        OUT/results.json and OUT/results.md; every rank returns the same dict.
        """
        if self.data_sha256 is None:
            raise RuntimeError("RecipeRun.finish before begin")
        if self._owns_process_group:
            destroy_distributed()
            self._owns_process_group = False
        if self.recorder is not None:
            try:
                return self.recorder.finish(metrics, self.data_sha256, extra)
            finally:
                self._release_out()  # the run's last write is done
        wall_time_s = round(time.perf_counter() - self._started, 3)
        return results_dict(
            self.task,
            self.dataset,
            metrics,
            self.config,
            self.seed,
            self.device,
            wall_time_s,
            self.data_sha256,
            extra,
            command=self.args.command,
        )


def run_recipe(
    main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None
) -> int:
    """Run a recipe's ``main(argv)`` as a script and return its exit status: 0, or 2 after
    printing ``SCRIPT: error: MESSAGE`` (one line, like argparse's) when it raises DataError
    or CheckpointError. Other exceptions are bugs and keep their traceback."""
    try:
        main(argv)
    except (DataError, CheckpointError) as error:
        print(f"{Path(sys.argv[0]).name}: error: {one_line(error)}", file=sys.stderr)
        return 2
    return 0


def evaluate_on(rows: Sequence[Row], **options: Any) -> Callable[[TaskModel], dict[str, float]]:
    """An ``evaluate_fn`` for ``RecipeRun.fit``: the model's own metrics on ``rows``,
    ``model.evaluate(rows, **options)`` (the task protocol)."""
    return lambda model: model.evaluate(rows, **options)


def trainer_config(args: RecipeArgs, device: torch.device, **fixed: Any) -> TrainerConfig:
    """What every recipe trains with: the TrainerConfig fields of ``args.config``, checkpoints
    in OUT/trainer (the last one and the best), the best weights loaded back at the end, the
    run's device and seed, no progress bar (train.log has the progress), and ``fixed``."""
    return config_from(
        TrainerConfig,
        args.config,
        output_dir=str(args.out / TRAINER_DIR),
        load_best_at_end=True,
        keep_last=1,
        device=str(device),
        seed=args.seed,
        progress_bar=False,
        **fixed,
    )


# --------------------------------------------------------------------------- data


def split_rows(
    dataset: Mapping[str, Any],
    source: str | os.PathLike,
    limits: Mapping[str, int | None],
) -> dict[str, list[dict[str, Any]]]:
    """The rows (dicts) of each split named in ``limits``, in that order, each cut to its
    first ``limit`` rows (None: all of them).

    dataset: split -> ``datasets.Dataset``, as ``seqlstm.data.load`` gives it. Raises
    DataError naming ``source`` and the splits it lacks.
    """
    missing = [split for split in limits if split not in dataset]
    if missing:
        raise DataError(
            f"{source}: no {' or '.join(missing)} split (it has {', '.join(dataset) or 'none'})"
        )
    rows = {}
    for split, limit in limits.items():
        part = dataset[split]
        if limit is not None:
            part = part.select(range(min(limit, len(part))))
        rows[split] = part.to_list()
    return rows


def data_fingerprint(data: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``data``, the data a recipe read.

    data: JSON-able values (dicts, lists, tuples, str, numbers, None; numpy scalars), rows as
    dicts, numpy arrays and torch tensors. Canonical: keys sorted, no spaces, text as UTF-8
    (not ``\\u`` escapes), tuples as lists; an array or tensor is
    ``{"dtype", "shape", "sha256"}`` of its little-endian C-order bytes, so a large one needs
    no text form. The value depends on the data only, not on where it came from: the hub
    and local files with the same rows give the same fingerprint.
    """
    text = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_canonical
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        return {
            "dtype": array.dtype.name,
            "shape": list(array.shape),
            "sha256": hashlib.sha256(array.tobytes()).hexdigest(),
        }
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"data_fingerprint cannot read a {type(value).__name__}")


# --------------------------------------------------------------------------- results


class RunRecorder:
    """Times one recipe run, logs to OUT/train.log and the console, writes the results files.

    Creating it creates OUT, attaches the log handlers (OUT/train.log is started afresh, or
    appended to with ``append_log``, as a resumed run does) and starts the clock (or counts
    from ``started``, a ``time.perf_counter()`` value); ``finish`` writes OUT/results.json and
    OUT/results.md (atomically), prints the markdown and detaches the log handlers. Under
    torchrun only rank 0 creates one (``RecipeRun.begin``).
    """

    def __init__(
        self,
        out: str | os.PathLike,
        task: str,
        dataset: str,
        config: Any,
        seed: int,
        device: str | torch.device,
        started: float | None = None,
        append_log: bool = False,
        command: str | None = None,
    ) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.task, self.dataset, self.config = task, dataset, config
        self.seed, self.device, self.command = seed, str(device), command
        self._handlers = _attach_log_handlers(self.out / "train.log", "a" if append_log else "w")
        self._start = time.perf_counter() if started is None else started

    def finish(
        self,
        metrics: Mapping[str, Mapping[str, float]],
        data_sha256: str,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write the results files; metrics maps split ("valid", "test") to {name: value},
        extra adds JSON-able fields after the standard ones."""
        wall_time_s = round(time.perf_counter() - self._start, 3)
        results = results_dict(
            self.task,
            self.dataset,
            metrics,
            self.config,
            self.seed,
            self.device,
            wall_time_s,
            data_sha256,
            extra or {},
            command=self.command,
        )
        text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
        # atomic: a run killed here must not leave a half-written results.json, which a
        # resumed run would take for the mark of a finished one
        write_text_atomic(self.out / "results.json", text)
        markdown = results_markdown(results, extra=list(extra or {}))
        write_text_atomic(self.out / "results.md", markdown)
        print(markdown, end="")
        logger.info("results written to %s", self.out / "results.json")
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
            handler.close()
        return results


def results_dict(
    task: str,
    dataset: str,
    metrics: Mapping[str, Mapping[str, float]],
    config: Any,
    seed: int,
    device: str | torch.device,
    wall_time_s: float,
    data_sha256: str,
    extra: Mapping[str, Any],
    command: str | None = None,
) -> dict[str, Any]:
    """The content of results.json, as it reads back from the file. ``command`` is the
    command line that ran it (None where a run was not started from one)."""
    twice = extra.keys() & _STANDARD_FIELDS
    if twice:
        raise ValueError(f"extra results fields {sorted(twice)} are standard fields")
    results = {
        "task": task,
        "dataset": dataset,
        "metrics": {split: {k: _number(v) for k, v in m.items()} for split, m in metrics.items()},
        "config": dataclasses.asdict(config),
        "seed": seed,
        "wall_time_s": wall_time_s,
        "device": str(device),
        "data_sha256": data_sha256,
        "command": command,
        **extra,
    }
    # through JSON once, so the returned dict equals the file (tuples as lists, paths as
    # strings)
    return json.loads(json.dumps(results, default=str))


_STANDARD_FIELDS = frozenset(
    (
        "task",
        "dataset",
        "metrics",
        "config",
        "seed",
        "wall_time_s",
        "device",
        "data_sha256",
        "command",
    )
)


def _number(value: Any) -> int | float:
    # metrics arrive as Python numbers, numpy scalars or 0-d tensors
    if isinstance(value, torch.Tensor | np.generic):
        value = value.item()
    return value if isinstance(value, int) and not isinstance(value, bool) else float(value)


def _attach_log_handlers(log_file: Path, mode: str = "w") -> list[logging.Handler]:
    """INFO and above from every logger to log_file (opened with ``mode``: "w" overwrites,
    "a" appends) and to stderr."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [
        logging.FileHandler(log_file, mode=mode, encoding="utf-8"),
        logging.StreamHandler(sys.stderr),
    ]
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return handlers


def results_markdown(results: Mapping[str, Any], extra: Sequence[str] = ()) -> str:
    """results.json as markdown: a metric x split table, the run, its config, then one table
    per ``extra`` field (a mapping: key | value; anything else: one row)."""
    splits = list(results["metrics"])
    names = list(dict.fromkeys(name for split in splits for name in results["metrics"][split]))
    lines = [f"# {results['task']} on {results['dataset']}", ""]
    lines += ["| metric | " + " | ".join(splits) + " |", "| --- |" + " --- |" * len(splits)]
    for name in names:
        cells = [_cell(results["metrics"][split].get(name, "-")) for split in splits]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| run | |", "| --- | --- |"]
    lines.append(f"| seed | {results['seed']} |")
    lines.append(f"| device | {results['device']} |")
    lines.append(f"| wall time (s) | {results['wall_time_s']:.1f} |")
    lines.append(f"| data sha256 | `{results['data_sha256']}` |")
    if results.get("command"):
        lines.append(f"| command | `{_cell(results['command'])}` |")
    lines += ["", "| config | |", "| --- | --- |"]
    lines += [f"| {key} | {_cell(json.dumps(value))} |" for key, value in results["config"].items()]
    for field in extra:
        value = results[field]
        items = value.items() if isinstance(value, Mapping) else [("", value)]
        lines += ["", f"| {field} | |", "| --- | --- |"]
        lines += [f"| {key} | `{_cell(item)}` |" for key, item in items]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|")
