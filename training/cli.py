"""The entry points' command-line guards: every override is checked before Hydra composes (an unknown
key, a key given twice, an option that does not exist are one line with a did-you-mean), run folder
paths are accepted as written, Hydra's `--experimental-rerun` (which unpickles a file) is refused, and
the harness's own errors end as one line and exit status 2 instead of a traceback.

Torch-free: train.py, sweep.py and report.py check their command line before the training stack loads.
"""
from __future__ import annotations

import difflib
import errno
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from training.config import CONFIG_DIR
from training.schema import ConfigError, validate

# Keys whose value is a path: a run folder's name holds `=` and `,` (`lr=0.003,bs=16,.../seed=0`),
# which Hydra's override grammar reads as syntax, so such a value is quoted for it.
PATH_KEYS = ("init_from", "model.name_or_path", "data.dir", "data.cache_dir", "results_dir",
             "data.tokenized_cache")


def grid_file_keys() -> tuple[str, ...]:
    """What a grid file may hold: the keys of the format that sweeping/grid.py's docstring shows, and
    any key of a bundled grid (configs/grid/*.yaml)."""
    import sweeping.grid

    documented = re.findall(r"^    (\w+):", sweeping.grid.__doc__ or "", re.M)
    bundled = [str(k) for path in sorted((CONFIG_DIR / "grid").glob("*.yaml")) for k in OmegaConf.load(path).keys()]
    return tuple(dict.fromkeys(documented + bundled))


def fail(prog: str, message: object) -> None:
    """One line on stderr and exit status 2, the status of every usage error of the entry points."""
    print(f"{prog}: {message}", file=sys.stderr)
    sys.exit(2)


@contextmanager
def quiet_interrupt(prog: str) -> Iterator[None]:
    """Ctrl-C ends an entry point with one line and status 130 (128 + SIGINT), not a traceback of
    wherever it struck; a run keeps its last finished epoch, so the same command resumes."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted (Ctrl-C); the same command resumes", file=sys.stderr)
        sys.exit(130)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def quote_path_values(argv: Sequence[str]) -> list[str]:
    """`init_from=results/runs/.../lr=0.003,bs=16,r=8,h=ab0edb04/seed=0` as Hydra can parse it: the
    value of a path key is quoted when it holds `=` or `,` and is not quoted already."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") in PATH_KEYS and value[:1] not in ("'", '"') and ("=" in value or "," in value):
            arg = f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        out.append(arg)
    return out


def hydra_arguments(argv: Sequence[str]):
    """Hydra's own reading of the command line (flags and overrides)."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser().parse_args(list(argv))


def prepare_argv(prog: str, config_name: str, argv: Sequence[str] | None = None,
                 config_dir: Path = CONFIG_DIR) -> list[str]:
    """sys.argv for `@hydra.main` after the checks; a bad command line ends here with one line, exit 2.
    `config_dir` and `config_name` are those of the entry point's `@hydra.main`."""
    argv = list(sys.argv if argv is None else argv)
    args = quote_path_values(argv[1:])
    if any(a.split("=", 1)[0] == "--experimental-rerun" for a in args):
        fail(prog, "--experimental-rerun is refused: it unpickles a file (running any code in it), and "
                   "the harness never writes one; rerun a run with the same command (rerun=true retrains it)")
    parsed = hydra_arguments(args)  # a usage error here is argparse's, as Hydra would print it
    if parsed.help or parsed.hydra_help or parsed.shell_completion or parsed.info:
        return [argv[0], *args]
    if parsed.config_path or parsed.config_name:
        return [argv[0], *args]  # another primary config: Hydra checks its keys
    try:
        check_overrides(parsed.overrides, config_name, extra_dir=parsed.config_dir, config_dir=config_dir)
        if config_name == "train" and not parsed.multirun and not parsed.cfg:
            check_values(parsed.overrides)
    except ConfigError as error:
        fail(prog, error)
    return [argv[0], *args]


def check_values(overrides: Sequence[str]) -> None:
    """Every value of `python train.py <overrides>` (training/schema.py), before the training stack
    loads: `lr=abc` answers in a second. train.py checks again after composing, packs included."""
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    from training.config import compose

    try:
        cfg = compose(overrides)
    except MissingMandatoryValue as error:
        key = getattr(error, "full_key", None) or "a key"
        if key == "data.dir":
            raise ConfigError("data.dir: data=glue_dir needs the GLUE folder, e.g. data.dir=/path/to/glue_data") from None
        raise ConfigError(f"{key} has no value (??? in its config file): give it on the command line, {key}=...") from None
    except OmegaConfBaseException:  # a value that cannot resolve (data.dir=??? ...): the schema's turn in train.py
        return
    validate(cfg)
    from training.preflight import check_data, check_model_path  # torch-free; train.py checks the rest

    check_model_path(str(cfg.model.name_or_path))
    try:
        check_data(cfg)
    except FileNotFoundError as error:
        raise ConfigError(str(error)) from None


def _keys(node, prefix: str = "") -> list[str]:
    """Every dotted key of a config, mappings included (`pack`, `pack.seed`, ...)."""
    out = []
    if isinstance(node, DictConfig):
        for key in node.keys():
            dotted = f"{prefix}{key}"
            out.append(dotted)
            value = node._get_node(key)
            if isinstance(value, DictConfig):
                out += _keys(value, f"{dotted}.")
    return out


def _has_key(cfg: DictConfig, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if isinstance(node, DictConfig) and part in node.keys():
            node = node._get_node(part)
        elif isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            node = node._get_node(int(part))
        else:
            return False
    return True


# Set by check_overrides for the command being checked: the config folders Hydra searches (the
# harness's, and a user's `--config-dir`), and the groups of the primary config's defaults list.
_search = [CONFIG_DIR]
_groups: set[str] = set()


def _is_group(name: str) -> bool:
    return name in _groups and any((d / name).is_dir() for d in _search)


def _group_options(group: str) -> list[str]:
    return sorted({p.stem for d in _search for p in (d / group).glob("*.yaml")})


def _option_file(group: str, option: str) -> Path:
    return next((d / group / f"{option}.yaml" for d in reversed(_search) if (d / group / f"{option}.yaml").exists()),
                _search[0] / group / f"{option}.yaml")


def _groups_holding(key: str) -> list[str]:
    """`data.dir` -> the options of group `data` whose file has that key (`data=glue_dir`)."""
    group, _, rest = key.partition(".")
    if not rest or not _is_group(group):
        return []
    return [f"{group}={option}" for option in _group_options(group)
            if _has_key(OmegaConf.load(_option_file(group, option)), rest)]


@contextmanager
def _composed(config_name: str, overrides: Sequence[str]) -> Iterator[DictConfig]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield compose(config_name=config_name, overrides=list(overrides))
        return
    with initialize_config_dir(str(_search[0]), version_base=None):
        yield compose(config_name=config_name, overrides=list(overrides))


def check_overrides(overrides: Sequence[str], config_name: str, extra_dir: str | None = None,
                    config_dir: Path = CONFIG_DIR) -> None:
    """Raise ConfigError for the first override that would not do what it says: a key or group
    option that does not exist (with the closest name), a key given twice, a `+` on an existing key.
    `extra_dir` is Hydra's `--config-dir` (searched before the harness's configs)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from hydra.errors import HydraException

    from training.help import parse

    _search[:] = [Path(config_dir)] + ([Path(extra_dir).expanduser().resolve()] if extra_dir else [])
    _groups.clear()
    _groups.update(group for group, _, _ in parse(config_name, Path(config_dir))[0])  # `grid` is a group of sweep.py, a key of report.py

    parser = OverridesParser.create()
    parsed, seen = [], {}
    for line in overrides:
        try:
            override = parser.parse_override(line)
        except HydraException as error:
            reason = str(error).splitlines()[0]
            raise ConfigError(f"{line!r} is not an override Hydra can read ({reason}); write key=value and "
                              "quote a value holding = , [ ] { } or spaces: key='a=b,c'") from None
        key = override.get_key_element().lstrip("+~")
        if key in seen and seen[key] != line:  # the same override twice says one thing; two values, which?
            raise ConfigError(f"{key} is given twice ({seen[key]} and {line}): give each key once")
        seen[key] = line
        parsed.append(override)

    groups, values = [], []
    for override in parsed:
        key = override.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue  # Hydra's own options: Hydra checks them
        (groups if _is_group(key) and override.package is None else values).append(override)

    for override in groups:
        options = _group_options(override.key_or_group)
        if override.is_delete():
            continue
        choices = override.value().list if override.is_sweep_override() else [override.value()]
        for choice in choices:
            if choice is not None and str(choice) not in options:
                raise ConfigError(f"{override.key_or_group}={choice}: no such option ({override.key_or_group}/"
                                  f"{choice}.yaml in {' or '.join(map(str, _search))}){did_you_mean(str(choice), options)}; "
                                  f"{override.key_or_group} is one of {', '.join(options)}")

    def first(override) -> str:
        if override.is_sweep_override() and override.value().list:
            return f"{override.get_key_element()}={override.value().list[0]}"
        return override.input_line

    searchpath = [f"hydra.searchpath=[file://{extra_dir}]"] if extra_dir else []
    try:
        with _composed(config_name, searchpath + [first(o) for o in groups]) as cfg:
            cfg = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
    except HydraException as error:  # a group option that does not compose: Hydra's own words, in one line
        raise ConfigError(" ".join(str(error).split())) from None
    known = _keys(cfg)
    for override in values:
        key = override.key_or_group
        exists = _has_key(cfg, key)
        if override.type == OverrideType.ADD and exists:
            raise ConfigError(f"{override.input_line}: {key} exists; set it without the +: "
                              f"{override.input_line.lstrip('+')}")
        if exists or override.type == OverrideType.FORCE_ADD and _has_key(cfg, key.rpartition(".")[0] or key):
            continue
        holders = _groups_holding(key)
        hint = (f"; {key} belongs to {' or '.join(holders)}: add it" if holders else did_you_mean(key, known))
        raise ConfigError(f"{override.input_line}: unknown key {key}{hint} "
                          f"(python {config_name}.py --help lists every key)")
    chosen = [o.value() for o in groups if o.key_or_group == "grid" and not o.is_sweep_override()]
    if chosen and chosen[0]:  # the grid as the command line leaves it (grid.tasks=[...] included)
        grid_overrides = [o.input_line for o in values if o.key_or_group.startswith("grid.")]
        if grid_overrides:
            with _composed(config_name, searchpath + [first(o) for o in groups] + grid_overrides) as full:
                cfg = OmegaConf.masked_copy(full, ["grid"])
        where = str(_option_file("grid", str(chosen[0]))) + (f" with {' '.join(grid_overrides)}" if grid_overrides else "")
        check_grid_file(cfg, where)


def check_grid_file(cfg: DictConfig, where: str | None = None) -> None:
    """A grid file's keys (sweep.py): `lrs:` is a typo of `lr:`, not a key to ignore."""
    grid = cfg.get("grid") if "grid" in cfg.keys() else None
    if not isinstance(grid, DictConfig):
        return
    where = where or f"grid {grid.get('name', '?')}"
    from training.schema import TRAINABLE_TASKS

    for key, known in (("tasks", TRAINABLE_TASKS), ("methods", _group_options("adapter"))):
        values = grid.get(key)
        for value in (values if isinstance(values, ListConfig) else [values] if values is not None else []):
            if str(value) not in known:
                raise ConfigError(f"{where}: {key} holds {value}{did_you_mean(str(value), known)}; "
                                  f"expected among {', '.join(known)}")
    known = grid_file_keys()
    unknown = [k for k in grid.keys() if k not in known]
    if unknown:
        key = str(unknown[0])
        raise ConfigError(f"{where}: unknown key {key}{did_you_mean(key, known)} (a grid holds {', '.join(known)})")


def harness_error_message(error: BaseException) -> str | None:
    """The one line for an error the user can fix (a bad option or file, a full disk), or None for a
    bug, whose traceback is worth seeing."""
    if isinstance(error, ConfigError):
        return str(error)
    if isinstance(error, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({error}); save it as UTF-8"
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = f" writing {error.filename}" if error.filename else ""
        return f"no space left on the device{where}: free some and run the same command again (it resumes)"
    if isinstance(error, RuntimeError) and "unexpected pos" in str(error):  # torch.save on a full disk
        return ("a file could not be written (torch.save: 'unexpected pos', as on a full disk): free some "
                "space and run the same command again (it resumes)")
    if isinstance(error, ConnectionError):  # glue.loading.GlueDataUnavailableError: the Hub, offline
        return str(error)
    if isinstance(error, (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)):
        return str(error)
    if isinstance(error, ValueError):  # the harness's checks raise ValueError with the file and key
        return str(error)
    from hydra.errors import HydraException

    if isinstance(error, HydraException):  # a config that does not compose (a grid's override): its first line
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


def report_error(prog: str, error: Exception) -> int:
    """For a `main(argv) -> int` entry point: a user's error is one line on stderr and status 2; a bug
    is raised again, with its traceback."""
    message = harness_error_message(error)
    if message is None:
        raise error
    print(f"{prog}: {message}", file=sys.stderr)
    return 2


@contextmanager
def one_line_errors(prog: str) -> Iterator[None]:
    """Around an entry point's work: a user's error is `<prog>: <message>` and exit status 2."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - sorted below: only the user's errors become one line
        message = harness_error_message(error)
        if message is None:
            raise
        fail(prog, message)


def check_run_overrides(run: str | Path, overrides: Sequence[str]) -> None:
    """evaluate.py / predict.py / export.py: `key=value` changes of a run's config.yaml. A folder among
    them (a glob that matched several runs), an unknown or repeated key, or a bad value is refused."""
    if not Path(run).is_dir():
        raise FileNotFoundError(f"{run}: no such folder (a run folder is results/runs/<task>/<method>/<setting>/seed=<s>)")
    # A run folder's own name holds `=` (`lr=0.003,.../seed=0`): a path is never a key
    folders = [o for o in overrides if "=" not in o or "/" in o.partition("=")[0] or Path(o).exists()]
    if folders:
        if any(Path(o).exists() or "/" in o for o in folders):
            raise ConfigError(f"one run folder at a time: {run} was given, and also {', '.join(folders)} "
                              "(a glob that matched several runs?)")
        raise ConfigError(f"{folders[0]!r} is not a key=value override")
    config = Path(run) / "config.yaml"
    if not config.is_file():
        return  # not a run folder: load_run says so
    cfg = OmegaConf.load(config)
    known, seen = _keys(cfg), {}
    for override in overrides:
        key = override.partition("=")[0].lstrip("+~")
        if key in seen and seen[key] != override:
            raise ConfigError(f"{key} is given twice ({seen[key]} and {override}): give each key once")
        seen[key] = override
        if not _has_key(cfg, key):
            raise ConfigError(f"{override}: unknown key {key}{did_you_mean(key, known)} (the keys are those "
                              f"of {config})")
    validate(OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides))))

