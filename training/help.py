"""`--help` of the entry points, generated from the config files themselves: the groups of the
primary config's defaults list with every option, and every top-level key with its default, each
with the one-line description written beside it in the yaml. Nothing here imports the training stack,
so `python train.py --help` answers at once.

The descriptions are the yaml comments: a key's inline comment (continued on the comment-only lines
below it), a group's comment in the defaults list, an option file's first comment line (or the inline
comment of its first key). configs/hydra/help/harness.yaml puts the text in Hydra's help template.
"""
from __future__ import annotations

import re
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
# `key: value   # comment` (a YAML comment starts at a `#` after whitespace)
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<value>.*?)(?:\s+#\s?(?P<comment>.*))?$")
DEFAULT_LINE = re.compile(r"^\s*-\s+(?P<entry>[^#]*?)\s*(?:#\s?(?P<comment>.*))?$")
COMMENT_LINE = re.compile(r"^\s*#\s?(?P<comment>.*)$")


def header_comment(path: Path) -> list[str]:
    """The comment lines at the top of a yaml file (without `@package` directives)."""
    lines = []
    for line in path.read_text().splitlines():
        match = COMMENT_LINE.match(line)
        if not match:
            break
        if not match["comment"].startswith("@package"):
            lines.append(match["comment"])
    return lines


def option_description(path: Path) -> str:
    """An option file's one line: the first sentence of its header comment (example commands left
    out), else its first key's inline comment."""
    header = " ".join(line.strip() for line in header_comment(path) if not line.strip().startswith("python "))
    if header:
        return re.split(r"(?<=\.)\s+(?=[A-Z])", header, maxsplit=1)[0]
    for line in path.read_text().splitlines():
        match = KEY_LINE.match(line)
        if match:
            return (match["comment"] or "").strip()
    return ""


def parse(config_name: str, config_dir: Path = CONFIG_DIR) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The groups `(group, default option, description)` of `config_name`'s defaults list (and of the
    configs it includes), and its keys `(dotted key, default, description)` outside `defaults`/`hydra`."""
    groups, keys = [], []
    lines = (config_dir / f"{config_name}.yaml").read_text().splitlines()
    block, parents = None, []  # the top-level block we are in; the keys enclosing the current line
    for line in lines:
        if not line.strip():
            continue
        comment_only = COMMENT_LINE.match(line)
        if comment_only:
            indent = len(line) - len(line.lstrip())
            if keys and block not in ("defaults", "hydra") and indent > 0:  # continues the last key's comment
                key, value, text = keys[-1]
                keys[-1] = (key, value, f"{text} {comment_only['comment'].strip()}".strip())
            continue
        if block == "defaults" and line.lstrip().startswith("-"):
            match = DEFAULT_LINE.match(line)
            entry = match["entry"]
            if entry.startswith("override ") or entry == "_self_":
                continue
            if ":" in entry:
                group, option = (part.strip() for part in entry.split(":", 1))
                groups.append((group, option, (match["comment"] or "").strip()))
            else:  # another primary config (sweep.yaml includes train.yaml): its groups and keys too
                included_groups, included_keys = parse(entry, config_dir)
                groups += included_groups
                keys += included_keys
            continue
        match = KEY_LINE.match(line)
        if not match:
            continue
        depth = len(match["indent"]) // 2
        if depth == 0:
            block = match["key"]
        if block in ("defaults", "hydra"):
            continue
        parents = parents[:depth] + [match["key"]]
        keys.append((".".join(parents), match["value"].strip(), (match["comment"] or "").strip()))
    return groups, keys


def help_text(config_name: str, config_dir: Path = CONFIG_DIR) -> str:
    """The groups and keys part of `--help` for `python <config_name>.py`."""
    groups, keys = parse(config_name, config_dir)
    out = [*header_comment(config_dir / f"{config_name}.yaml"), "", "== Groups: group=option (the default first) =="]
    for group, default, description in groups:
        out.append(f"{group}={default}" + (f"    {description}" if description else ""))
        options = sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
        width = max(map(len, options), default=0)
        for option in options:
            out.append(f"    {option:<{width}}  {option_description(config_dir / group / f'{option}.yaml')}".rstrip())
    # Keys whose value is a mapping (pack:) are headings; their dotted children carry the values.
    width = max((len(key) for key, _, _ in keys), default=0)
    shown = [f"({value})" if value else "" for _, value, _ in keys]
    value_width = max(map(len, shown), default=0)
    out += ["", "== Keys: key=value (default) =="]
    for (key, _, description), value in zip(keys, shown):
        out.append(f"{key:<{width}}  {value:<{value_width}}  {description}".rstrip())
    # Hydra fills its help template with string.Template: a literal `$` (as in `${task.lr}`) is `$$`.
    return "\n".join(out).replace("$", "$$")
