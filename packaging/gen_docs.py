#!/usr/bin/env python3
"""Generates the Debian package's documentation files at build time.

  gen_docs.py --out DIR --changelog FILE --version X.Y.Z [--modeldiff EXE] [--gui EXE]
              [--template-dir DIR]

  --modeldiff: DIR/modeldiff.1.gz (man page) and DIR/modeldiff.bash-completion, from the
               hand-written resources/man/modeldiff.1.in and `modeldiff [COMMAND] --help`;
  --gui:       DIR/modeldiff-gui.1.gz, from resources/man/modeldiff-gui.1.in and
               `modeldiff-gui --help` (Qt offscreen: no display needed);
  --changelog: DIR/changelog.Debian.gz (gzip -9n).

The option lists come from the programs themselves, so the man pages and the completion never
drift from the code; the prose around them is written by hand in the templates. Everything is
reproducible: the date is the changelog's latest entry, gzip carries no name or time stamp,
and the programs run with HOME=~ (so defaults under the home folder read "~/...") and without
the environment variables that change their defaults.
"""

import argparse
import concurrent.futures
import email.utils
import gzip
import os
import pathlib
import re
import subprocess
import sys

CLI11_NAME_WIDTH = 30  # CLI11's default column width for option names


def run_help(exe, args):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MODELDIFF_", "XDG_")) and k != "OPENBLAS_CORETYPE"}
    env.update(HOME="~", QT_QPA_PLATFORM="offscreen", ASAN_OPTIONS="detect_leaks=0",
               LC_ALL="C.UTF-8")
    try:
        p = subprocess.run([exe, *args, "--help"], env=env, capture_output=True, text=True,
                           check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        sys.exit(f"gen_docs.py: cannot run `{exe} {' '.join(args)} --help`: {e}")
    if p.returncode != 0 or not p.stdout.strip():
        sys.exit(f"gen_docs.py: `{exe} {' '.join(args)} --help` failed (exit {p.returncode}): "
                 f"{p.stderr.strip()}")
    return p.stdout


# ----------------------------------------------------------------------------- parsing


def parse_cli11(text):
    """CLI11's help: description, 'Usage:', then sections ('Options:', ...) of entries. An
    entry's name fills the first CLI11_NAME_WIDTH columns; a longer name puts the description
    on the next line, indented to that column."""
    lines = text.rstrip("\n").split("\n")
    description, usage, sections, current = [], "", {}, None
    for line in lines:
        if line.startswith("Usage: "):
            usage = line[len("Usage: "):].strip()
        elif re.match(r"^[A-Z][A-Za-z ]*:$", line):
            current = sections.setdefault(line[:-1], [])
        elif current is None:
            if line.strip():
                description.append(line.strip())
        elif not line.strip():
            continue
        elif line.startswith(" " * CLI11_NAME_WIDTH):
            if not current:
                sys.exit(f"gen_docs.py: CLI11 help: a description without an entry: {line!r}")
            name, desc = current[-1]
            current[-1] = (name, (desc + " " + line.strip()).strip())
        elif line.startswith("  ") and line[2] != " ":
            if len(line) > CLI11_NAME_WIDTH and line[CLI11_NAME_WIDTH - 1] == " " \
                    and line[CLI11_NAME_WIDTH] != " ":
                current.append((line[:CLI11_NAME_WIDTH].strip(), line[CLI11_NAME_WIDTH:].strip()))
            else:
                current.append((line.strip(), ""))
        else:
            sys.exit(f"gen_docs.py: CLI11 help: unexpected line {line!r}")
    return " ".join(description), usage, sections


def parse_qt(text):
    """QCommandLineParser's help: 'Usage:', description, 'Options:' and 'Arguments:' with
    entries whose description starts after two or more spaces, continued on indented lines."""
    usage, description, sections, current = "", [], {}, None
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("Usage: "):
            usage = line[len("Usage: "):].strip()
        elif re.match(r"^[A-Z][A-Za-z ]*:$", line):
            current = sections.setdefault(line[:-1], [])
        elif current is None:
            if line.strip():
                description.append(line.strip())
        elif not line.strip():
            continue
        elif line.startswith("  ") and line[2] != " ":
            name, _, desc = line.strip().partition("  ")
            current.append((name.strip(), desc.strip()))
        elif line.startswith("   ") and current:
            name, desc = current[-1]
            current[-1] = (name, (desc + " " + line.strip()).strip())
        else:
            sys.exit(f"gen_docs.py: Qt help: unexpected line {line!r}")
    return " ".join(description), usage, sections


def split_cli11_name(name):
    """'-c,--components INT:POSITIVE=10 Needs: --x' -> (['-c', '--components'],
    'INT:POSITIVE', '10', ['Needs: --x'], required)."""
    flags, _, rest = name.partition(" ")
    names = flags.split(",")
    notes = []
    for key in ("Excludes:", "Needs:"):
        m = re.search(r"\s*\b" + key + r"(.*)$", rest)
        if m:
            notes.insert(0, key + m.group(1))
            rest = rest[:m.start()]
    required = bool(re.search(r"\bREQUIRED\b", rest))
    rest = re.sub(r"\s*\bREQUIRED\b", "", rest).strip()
    default = None
    # The default follows the last '=' outside the {choices} and [range] of the type.
    depth, cut = 0, -1
    for i, ch in enumerate(rest):
        depth += ch in "{[" and 1 or (ch in "}]" and -1 or 0)
        if ch == "=" and depth == 0:
            cut = i
    if cut >= 0:
        rest, default = rest[:cut], rest[cut + 1:]
    return names, rest.strip(), default, notes, required


def choices_of(type_text):
    m = re.search(r"\{([^}]*)\}", type_text)
    return m.group(1).split(",") if m else []


# ----------------------------------------------------------------------------- groff


def esc(text):
    """Plain text for groff: backslashes escaped, '-' as a real minus/hyphen where it is
    an option dash, no line starting with a control character."""
    text = text.replace("\\", "\\e")
    # Every dash of an option name (--key-a) is a minus sign; hyphens inside words stay.
    text = re.sub(r"(?<![\w-])-[-\w]*", lambda m: m.group(0).replace("-", "\\-"), text)
    return text


def roff_lines(text):
    out = []
    for line in text.split("\n"):
        out.append("\\&" + line if line[:1] in (".", "'") else line)
    return "\n".join(out)


def cli11_option_roff(name, desc):
    names, type_text, default, notes, required = split_cli11_name(name)
    head = ", ".join(f"\\fB{esc(n)}\\fR" for n in names)
    if type_text:
        head += f" \\fI{esc(type_text)}\\fR"
    extra = []
    if required:
        extra.append("Required.")
    if default is not None:
        extra.append(f"Default: {esc(default)}.")
    extra += [esc(n.replace("Needs:", "Needs").replace("Excludes:", "Excludes")) + "." for n in notes]
    body = esc(desc)
    if body and not body.endswith("."):
        body += "."
    return ".TP\n" + roff_lines(head) + "\n" + roff_lines(" ".join([body] + extra).strip()) + "\n"


def modeldiff_docs(exe):
    top_desc, _, top = parse_cli11(run_help(exe, []))
    commands = [(n, d) for n, d in top.get("Subcommands", [])]
    if not commands:
        sys.exit("gen_docs.py: `modeldiff --help` lists no subcommands")
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        helps = list(pool.map(lambda c: run_help(exe, [c[0]]), commands))
    roff, completion_cases = [], []
    for (command, summary), text in zip(commands, helps):
        desc, usage, sections = parse_cli11(text)
        roff.append(f'.SS "{esc(usage)}"\n')
        roff.append(".PP\n" + roff_lines(esc(desc or summary)) + "\n")
        for pname, pdesc in sections.get("Positionals", []):
            pos, _, ptype = pname.partition(" ")
            ptype = re.sub(r"\s*\bREQUIRED\b", "", ptype)
            roff.append(f".TP\n\\fI{esc(pos)}\\fR ({esc(ptype)})\n{roff_lines(esc(pdesc))}\n")
        opts, value_cases = [], []
        for oname, odesc in sections.get("Options", []):
            roff.append(cli11_option_roff(oname, odesc))
            names, type_text, _, _, _ = split_cli11_name(oname)
            opts += names
            if choices_of(type_text):
                value_cases.append((names, choices_of(type_text)))
        completion_cases.append((command, opts, value_cases))
    top_opts = [n for name, _ in top.get("Options", []) for n in split_cli11_name(name)[0]]
    return top_desc, "".join(roff), completion(commands, top_opts, completion_cases)


def completion(commands, top_opts, cases):
    names = " ".join(c for c, _ in commands)
    out = [
        "# bash completion for modeldiff(1). Generated from `modeldiff [COMMAND] --help` by",
        "# packaging/gen_docs.py: do not edit.",
        "_modeldiff() {",
        "  local cur prev words cword",
        "  _init_completion || return",
        "  local command='' i",
        "  for ((i = 1; i < cword; i++)); do",
        "    case ${words[i]} in",
        f"      {'|'.join(c for c, _ in commands)})",
        "        command=${words[i]}",
        "        break",
        "        ;;",
        "    esac",
        "  done",
        "  local opts",
        "  case $command in",
        f"    '') opts='{' '.join(top_opts)}' ;;",
    ]
    value_lines = []
    for command, opts, value_cases in cases:
        out.append(f"    {command}) opts='{' '.join(opts)}' ;;")
        for flag_names, choices in value_cases:
            value_lines.append(f"    {command}:{('|' + command + ':').join(flag_names)})")
            value_lines.append(f"      mapfile -t COMPREPLY < <(compgen -W '{' '.join(choices)}'"
                               " -- \"$cur\")")
            value_lines.append("      return")
            value_lines.append("      ;;")
    out += ["  esac"]
    if value_lines:
        out += ["  case $command:$prev in"] + value_lines + ["  esac"]
    out += [
        "  if [[ $cur == -* ]]; then",
        "    mapfile -t COMPREPLY < <(compgen -W \"$opts\" -- \"$cur\")",
        "  elif [[ -z $command ]]; then",
        f"    mapfile -t COMPREPLY < <(compgen -W '{names}' -- \"$cur\")",
        "  else",
        "    _filedir",
        "  fi",
        "} &&",
        "  complete -F _modeldiff modeldiff",
        "",
    ]
    return "\n".join(out)


def gui_docs(exe):
    _, _, sections = parse_qt(run_help(exe, []))
    roff = []
    for name, desc in sections.get("Options", []):
        head = ", ".join(
            re.sub(r"^(-[-\w]+)(?: <(.+)>)?$",
                   lambda m: f"\\fB{esc(m.group(1))}\\fR" +
                   (f" \\fI{esc(m.group(2))}\\fR" if m.group(2) else ""), part.strip())
            for part in name.split(","))
        roff.append(f".TP\n{roff_lines(head)}\n{roff_lines(esc(desc))}\n")
    args = []
    for name, desc in sections.get("Arguments", []):
        args.append(f".TP\n\\fI{esc(name)}\\fR\n{roff_lines(esc(desc))}\n")
    if not roff:
        sys.exit("gen_docs.py: `modeldiff-gui --help` lists no options")
    return "".join(roff), "".join(args)


# ----------------------------------------------------------------------------- output


def changelog_head(path):
    """(version, 'YYYY-MM-DD') of the latest entry of a Debian changelog."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    version = re.match(r"^\S+ \(([^)]+)\)", text)
    trailer = re.search(r"^ -- .+<.+>  (.+)$", text, re.M)
    if not version or not trailer:
        sys.exit(f"gen_docs.py: {path}: not a Debian changelog (no 'pkg (version)' line or "
                 "' -- Name <email>  date' trailer)")
    date = email.utils.parsedate_to_datetime(trailer.group(1))
    return version.group(1), date.strftime("%Y-%m-%d")


def write_gz(path, data):
    # gzip -9n: no file name, no time stamp (reproducible; lintian checks the level).
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                compresslevel=9, mtime=0) as gz:
        gz.write(data.encode("utf-8"))


def fill(template, values):
    text = pathlib.Path(template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value.rstrip("\n"))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        sys.exit(f"gen_docs.py: {template}: unknown placeholders {left}")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--modeldiff")
    parser.add_argument("--gui")
    parser.add_argument("--changelog", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--template-dir", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parents[1] / "resources" / "man")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    deb_version, date = changelog_head(args.changelog)
    if deb_version.split("-")[0] != args.version:
        sys.exit(f"gen_docs.py: {args.changelog}: the latest entry is {deb_version}, the project "
                 f"is {args.version}: add a changelog entry for it")
    values = {"VERSION": args.version, "DATE": date}
    if args.modeldiff:
        description, commands, bash = modeldiff_docs(args.modeldiff)
        values.update(DESCRIPTION=roff_lines(esc(description)), COMMANDS=commands)
        write_gz(args.out / "modeldiff.1.gz", fill(args.template_dir / "modeldiff.1.in", values))
        (args.out / "modeldiff.bash-completion").write_text(bash, encoding="utf-8")
    if args.gui:
        options, arguments = gui_docs(args.gui)
        values.update(OPTIONS=options, ARGUMENTS=arguments)
        write_gz(args.out / "modeldiff-gui.1.gz",
                 fill(args.template_dir / "modeldiff-gui.1.in", values))
    write_gz(args.out / "changelog.Debian.gz",
             pathlib.Path(args.changelog).read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
