"""``bh insmod``, ``rmmod``, ``lsmod``, ``modinfo``: kmod's tools (reference §11).

    bh insmod FILE.py [param=value ...]     bh rmmod NAME
    bh lsmod                                bh modinfo [-F FIELD|-a|-d|-l|-p|-n] [-0] FILE.py

They print what kmod prints: nothing on success for insmod and rmmod,
``insmod: ERROR: could not insert module FILE: <reason>`` on failure, lsmod's
table, modinfo's ``key:           value`` lines.  One addition: where the
kernel knows more than the errno (a syntax error's line, an init that raised),
insmod adds it in parentheses at the end of kmod's line, since a Python
module's mistakes are not caught by a compiler first.

``modinfo`` reads the file without running it and needs no kernel: like the
real one, which reads the ``.modinfo`` section, it looks only at the
``MODULE_*``, ``module_param`` and ``MODULE_PARM_DESC`` calls at the top
level of the file (with literal arguments), and lists them in the reverse of
their order in the source, as modinfo shows a gcc-built module's section,
then the fields modpost adds, then the parameters in source order.
"""

from __future__ import annotations

import argparse
import os
import sys

from .common import ToolError, add_name_option, call, connect

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ast

# the MODULE_* calls modinfo shows, and the .modinfo key each one sets
MODINFO_KEYS = {"MODULE_LICENSE": "license", "MODULE_AUTHOR": "author",
                "MODULE_DESCRIPTION": "description", "MODULE_VERSION": "version",
                "MODULE_ALIAS": "alias", "MODULE_FIRMWARE": "firmware",
                "MODULE_SOFTDEP": "softdep", "MODULE_IMPORT_NS": "import_ns"}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("insmod", help="load a module file into a booted kernel",
                       description="Load a module file: its init runs in an insmod task.  "
                                   "Prints nothing on success, as kmod's insmod.",
                       epilog="example: bh insmod examples/irq_driver.py fires=5")
    add_name_option(p)
    p.add_argument("file", metavar="FILE.py", help="the module file")
    p.add_argument("params", nargs="*", metavar="param=value", help="module parameters")
    p.set_defaults(handler=cmd_insmod)

    p = sub.add_parser("rmmod", help="unload a module",
                       description="Run a module's exit function and unload it.")
    add_name_option(p)
    p.add_argument("module", metavar="NAME", help="the module's name (or its file)")
    p.set_defaults(handler=cmd_rmmod)

    p = sub.add_parser("lsmod", help="list the loaded modules",
                       description="List the loaded modules, as lsmod formats /proc/modules.")
    add_name_option(p)
    p.set_defaults(handler=cmd_lsmod)

    p = sub.add_parser("modinfo", help="show a module file's information (no kernel needed)",
                       description="Show what a module file declares (licence, author, "
                                   "description, parameters), in modinfo's layout.  The file is "
                                   "read, not run, and no kernel is needed.")
    p.add_argument("files", nargs="+", metavar="FILE.py")
    fields = p.add_mutually_exclusive_group()
    fields.add_argument("-F", "--field", metavar="FIELD", help="print only this field's values")
    fields.add_argument("-a", "--author", dest="field", action="store_const", const="author",
                        help="print only 'author'")
    fields.add_argument("-d", "--description", dest="field", action="store_const",
                        const="description", help="print only 'description'")
    fields.add_argument("-l", "--license", dest="field", action="store_const", const="license",
                        help="print only 'license'")
    fields.add_argument("-p", "--parameters", dest="field", action="store_const", const="parm",
                        help="print only 'parm'")
    fields.add_argument("-n", "--filename", dest="field", action="store_const",
                        const="filename", help="print only 'filename'")
    p.add_argument("-0", "--null", action="store_true", help="end each value with NUL, not \\n")
    p.set_defaults(handler=cmd_modinfo)


# ----------------------------------------------------------------------
# insmod, rmmod, lsmod


def cmd_insmod(args: argparse.Namespace) -> int:
    from bottomhalf.client import ClientError

    path = args.file
    if not os.path.isfile(path):
        why = "Is a directory" if os.path.isdir(path) else "No such file or directory"
        raise ToolError(f"insmod: ERROR: could not load module {path}: {why}")
    params: dict[str, str] = {}
    for spec in args.params:
        key, _, value = spec.partition("=")
        if not key:
            raise ToolError(f"insmod: ERROR: could not insert module {path}: Invalid parameters "
                            f"(no name in '{spec}')")
        params[key] = value
    full = os.path.abspath(path)
    with connect(args) as c:
        try:
            c.call("insmod", path=full, params=params)
        except ClientError as e:
            if not e.errno:
                raise
            raise ToolError(insmod_error(path, full, e.errno, e.detail)) from None
    return 0


def insmod_error(path: str, full: str, err: int, detail: str) -> str:
    """kmod's line, with what the kernel knows beyond the errno in parentheses."""
    from bottomhalf.errnos import kmod_strerror

    why = kmod_strerror(err)
    line = f"insmod: ERROR: could not insert module {path}: {why}"
    detail = detail.replace(full, path).strip()
    if detail and detail != why:
        line += f" ({detail.splitlines()[0]})"
    return line


def cmd_rmmod(args: argparse.Namespace) -> int:
    from bottomhalf.client import ClientError
    from bottomhalf.modname import module_name

    name = module_name(args.module)
    with connect(args) as c:
        try:
            c.call("rmmod", name=name)
        except ClientError as e:
            if not e.errno:
                raise
            raise ToolError(f"rmmod: ERROR: {e}") from None
    return 0


def cmd_lsmod(args: argparse.Namespace) -> int:
    sys.stdout.write(call(args, "lsmod"))
    return 0


# ----------------------------------------------------------------------
# modinfo


def cmd_modinfo(args: argparse.Namespace) -> int:
    sep = "\0" if args.null else "\n"
    status = 0
    for path in args.files:
        if not os.path.isfile(path):
            sys.stdout.flush()
            sys.stderr.write(f"modinfo: ERROR: Module {path} not found.\n")
            status = 1
            continue
        try:
            fields, params = read_modinfo(path)
        except ToolError as e:
            sys.stdout.flush()
            sys.stderr.write(f"{e}\n")
            status = 1
            continue
        sys.stdout.write(format_modinfo(os.path.abspath(path), fields, params, args.field, sep))
    return status


def read_modinfo(path: str) -> tuple[list[tuple[str, str]], list[tuple[str, str | None, str | None]]]:
    """The .modinfo of a module file: ``[(key, value)]`` in source order, and
    ``[(param, description, type)]`` in source order.  Nothing is executed."""
    import ast

    from bottomhalf.modname import module_name

    name = module_name(path)
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, UnicodeDecodeError) as e:
        raise ToolError(f"modinfo: ERROR: could not get modinfo from '{name}': "
                        f"Exec format error ({e})") from None
    except SyntaxError as e:
        where = f"{path}:{e.lineno}" if e.lineno else path
        raise ToolError(f"modinfo: ERROR: could not get modinfo from '{name}': Exec format error "
                        f"({where}: SyntaxError: {e.msg})") from None
    fields: list[tuple[str, str]] = []
    params: dict[str, list[str | None]] = {}
    for call_node in _top_level_calls(tree):
        fn = call_node.func.id  # type: ignore[attr-defined]
        strs = _literal_args(call_node)
        if strs is None:
            continue
        if fn in MODINFO_KEYS and len(strs) == 1:
            fields.append((MODINFO_KEYS[fn], strs[0]))
        elif fn == "module_param" and len(strs) >= 2:
            params.setdefault(strs[0], [None, None])[1] = strs[1]
        elif fn == "MODULE_PARM_DESC" and len(strs) == 2:
            params.setdefault(strs[0], [None, None])[0] = strs[1]
    return fields, [(p, d, t) for p, (d, t) in params.items()]


def _top_level_calls(tree: ast.Module) -> list[ast.Call]:
    import ast

    out = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and isinstance(node.value.func, ast.Name):
            out.append(node.value)
    return out


def _literal_args(node: ast.Call) -> list[str] | None:
    import ast

    out = []
    for a in node.args:
        if isinstance(a, ast.Constant) and isinstance(a.value, (str, int)):
            out.append(str(a.value))
        else:
            return None
    return out


def format_modinfo(filename: str, fields: list[tuple[str, str]],
                   params: list[tuple[str, str | None, str | None]], only: str | None,
                   sep: str) -> str:
    """modinfo's output: ``key:`` padded to 16 columns, then the value."""
    import hashlib

    from bottomhalf.modname import module_name
    from bottomhalf.report import UTS_RELEASE

    name = module_name(filename)
    entries = list(reversed(fields))
    if any(k == "version" for k, _ in fields):
        with open(filename, "rb") as f:
            digest = hashlib.md5(f.read(), usedforsecurity=False).hexdigest()
        entries.append(("srcversion", digest[:24].upper()))
    entries += [("depends", ""), ("retpoline", "Y"), ("name", name),
                ("vermagic", f"{UTS_RELEASE} SMP preempt mod_unload modversions ")]
    parm_lines = []
    for pname, desc, ptype in params:
        if desc is None:
            parm_lines.append(f"{pname}:{ptype}")
        elif ptype is not None:
            parm_lines.append(f"{pname}:{desc} ({ptype})")
        else:
            parm_lines.append(f"{pname}:{desc}")
    if only == "filename":
        return filename + sep
    if only == "parm":
        return "".join(line + sep for line in parm_lines)
    if only is not None:
        return "".join(v + sep for k, v in entries if k == only)
    out = [f"{'filename:':<16}{filename}{sep}"]
    out += [f"{k + ':':<16}{v}{sep}" for k, v in entries]
    out += [f"{'parm:':<16}{line}{sep}" for line in parm_lines]
    return "".join(out)
