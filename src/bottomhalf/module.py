"""Loadable modules: insmod, rmmod, /proc/modules, lsmod.

Mirrors kernel/module/main.c and kmod's messages (reference §11).  A module
is a Python file; each load executes it afresh as a new module object, in
the process context of an ``insmod`` task, then calls its init.  The checks a
C toolchain and the module loader would make happen here, before anything
runs:

* the file must parse (else ``ENOEXEC``, "Invalid module format" in spirit);
* a module must not define a function with a kernel API's name: in C the
  tutorial's ``static int __init tasklet_init(void)`` does not even compile
  (``conflicting types for 'tasklet_init'``); in Python it would silently
  shadow the API and recurse, so it is refused with a message naming it;
* ``MODULE_LICENSE`` is required (modpost: ``missing MODULE_LICENSE()``); a
  non-GPL-compatible licence loads, taints the kernel (``P``) and may not use
  GPL-only symbols (``Unknown symbol ... (err -2)``).

An init that returns ``-errno`` or raises is rolled back completely: what
the module registered (IRQ handlers, queued tasklets and work, armed timers,
workqueues) is released, with a line in the log for each, and
``ModuleLoadError`` is raised.  A module unloaded with deferred work still
queued is *not* cleaned up: as on Linux, the kernel later jumps into its
freed code and reports the page fault.
"""

from __future__ import annotations

import ast
import os
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errnos import EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, ENOEXEC
from .errors import ModuleError, ModuleLoadError

if TYPE_CHECKING:
    from .context import ExecCtx
    from .kernel import Kernel

GPL_COMPATIBLE = {"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL",
                  "Dual MPL/GPL"}

# EXPORT_SYMBOL_GPL names of our API (reference §5.3, §4.4, §2)
GPL_ONLY = {
    "alloc_workqueue", "alloc_ordered_workqueue", "create_workqueue",
    "create_singlethread_workqueue", "create_freezable_workqueue", "destroy_workqueue",
    "flush_work", "cancel_work_sync", "drain_workqueue", "mod_delayed_work",
    "mod_delayed_work_on", "work_busy", "disable_work", "disable_work_sync", "enable_work",
    "disable_delayed_work", "disable_delayed_work_sync", "enable_delayed_work",
    "system_highpri_wq", "system_long_wq", "system_unbound_wq", "system_dfl_wq",
    "system_freezable_wq", "system_power_efficient_wq", "system_bh_wq",
    "system_bh_highpri_wq", "workqueue_set_max_active", "workqueue_congested",
    "tasklet_unlock_wait", "request_threaded_irq", "usleep_range",
}

META = "__bh_module__"
MODULE_BASE = 0xFFFFFFFFC0A00000


@dataclass
class Module:
    """A loaded module (what lsmod lists)."""

    name: str
    path: str
    module: types.ModuleType
    license: str = ""
    author: str = ""
    description: str = ""
    version: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    refcount: int = 0
    state: str = "Coming"
    taints: str = "O"
    size: int = 4096
    address: int = 0
    init: Any = None
    exit: Any = None
    users: list[str] = field(default_factory=list)
    used_names: set[str] = field(default_factory=set)

    def __repr__(self) -> str:
        return f"<Module {self.name} {self.state} refcount={self.refcount}>"


class ModuleMeta:
    """What MODULE_* and module_* calls record while the file executes."""

    def __init__(self) -> None:
        self.init: Any = None
        self.exit: Any = None
        self.license: str | None = None
        self.author = ""
        self.description = ""
        self.version = ""
        self.params: dict[str, tuple[str, int]] = {}
        self.param_desc: dict[str, str] = {}


def meta_of(globals_: dict[str, Any]) -> ModuleMeta:
    meta = globals_.get(META)
    if meta is None:
        meta = ModuleMeta()
        globals_[META] = meta
    return meta


class Modules:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.loaded: dict[str, Module] = {}
        self._by_globals: dict[int, Module] = {}
        self.unloaded: dict[int, Module] = {}  # code that must not run any more
        self.last_unloaded: str | None = None
        self._next_base = MODULE_BASE

    # ------------------------------------------------------------------
    # lookups used by symbolization and reports
    def name_for_globals(self, g: dict[str, Any]) -> str | None:
        m = self._by_globals.get(id(g))
        if m is not None and m.module.__dict__ is g:
            return m.name
        m = self.unloaded.get(id(g))
        if m is not None and m.module.__dict__ is g:
            return m.name
        return None

    def is_unloaded_code(self, fn: Any) -> Module | None:
        g = getattr(getattr(fn, "__func__", fn), "__globals__", None)
        if g is None or not self.unloaded:
            return None
        m = self.unloaded.get(id(g))
        if m is not None and m.module.__dict__ is g:
            return m
        return None

    def global_name_of(self, obj: Any) -> tuple[str, str] | None:
        for m in list(self._by_globals.values()) + list(self.unloaded.values()):
            for k, v in m.module.__dict__.items():
                if v is obj and not k.startswith("__"):
                    return m.name, k
        return None

    def linked_in(self) -> str:
        names = [f" {m.name}({m.taints})" if m.taints else f" {m.name}"
                 for m in reversed(list(self.loaded.values()))]
        out = "".join(names)
        if self.last_unloaded:
            out += f" [last unloaded: {self.last_unloaded}]"
        return out

    def owns(self, mod: Module) -> Any:
        g = mod.module.__dict__

        def check(fn: Any) -> bool:
            return getattr(getattr(fn, "__func__", fn), "__globals__", None) is g

        return check

    # ------------------------------------------------------------------
    # loading
    def prepare(self, path: str, params: dict[str, Any]) -> tuple[Module, types.CodeType]:
        """Everything that happens before any module code runs."""
        name = os.path.splitext(os.path.basename(path))[0]
        if not os.path.isfile(path):
            raise ModuleLoadError(name, ENOENT, f"{path}: no such module file")
        if not path.endswith(".py"):
            raise ModuleLoadError(name, ENOEXEC, f"{path}: a module file must be a .py file")
        if name in self.loaded:
            raise ModuleLoadError(name, EEXIST, f"module {name} is already loaded")
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ModuleLoadError(name, ENOEXEC, f"{path}: cannot read: {e}") from None
        try:
            tree = ast.parse(source, filename=path)
            code = compile(tree, path, "exec")
        except SyntaxError as e:
            where = f"{path}:{e.lineno}" if e.lineno else path
            raise ModuleLoadError(name, ENOEXEC, f"{where}: SyntaxError: {e.msg}") from None
        clash = find_api_clash(tree, path, name)
        if clash:
            raise ModuleLoadError(name, ENOEXEC, clash)
        module = types.ModuleType(name)
        module.__file__ = os.path.abspath(path)
        mod = Module(name, path, module, params=dict(params))
        mod.size = (len(source.encode()) // 4096 + 3) * 4096
        mod.address = self._next_base
        self._next_base += 0x10000
        mod.used_names = _used_names(tree)
        return mod, code

    def register(self, mod: Module) -> None:
        self._by_globals[id(mod.module.__dict__)] = mod

    def forget(self, mod: Module) -> None:
        self._by_globals.pop(id(mod.module.__dict__), None)
        self.loaded.pop(mod.name, None)

    def load_in_task(self, ctx: ExecCtx, mod: Module, code: types.CodeType) -> None:
        """Runs in the insmod task: execute the file, check it, call init."""
        k = self.kernel
        g = mod.module.__dict__
        g["KBUILD_MODNAME"] = mod.name
        self.register(mod)
        try:
            exec(code, g)
        except BaseException as exc:  # noqa: BLE001
            k.oops(ctx, exc, f"module {mod.name} (loading {mod.path})")
            self.rollback(ctx, mod, "its top-level code raised")
            raise ModuleLoadError(mod.name, EFAULT,
                                  f"loading the file raised {type(exc).__name__}: {exc}") from exc
        meta = meta_of(g)
        if meta.license is None:
            self.rollback(ctx, mod, None)
            raise ModuleLoadError(mod.name, ENOEXEC, f"missing MODULE_LICENSE() in {mod.path}")
        mod.license = meta.license
        mod.author = meta.author
        mod.description = meta.description
        mod.version = meta.version
        mod.init = meta.init
        mod.exit = meta.exit
        taints = "O"
        if meta.license not in GPL_COMPATIBLE:
            taints = "PO"
            used = mod.used_names & GPL_ONLY
            if used:
                for sym in sorted(used):
                    k.log_line(4, f"{mod.name}: Unknown symbol {sym} (err -2)")
                self.rollback(ctx, mod, None)
                raise ModuleLoadError(mod.name, ENOENT,
                                      "Unknown symbol in module: a module with licence "
                                      f"'{meta.license}' may not use GPL-only symbols: "
                                      + ", ".join(sorted(used)))
        mod.taints = taints
        if not self._apply_params(ctx, mod, meta):
            self.rollback(ctx, mod, None)
            raise ModuleLoadError(mod.name, EINVAL, "bad module parameter (see dmesg)")
        if "P" in taints and "P" not in k.taint:
            k.log_line(4, f"{mod.name}: module license '{meta.license}' taints kernel.")
            k.log_line(4, "Disabling lock debugging due to kernel taint")
            k.add_taint("P")
        if "O" not in k.taint:
            k.log_line(4, f"{mod.name}: loading out-of-tree module taints kernel.")
            k.add_taint("O")
        self.loaded[mod.name] = mod
        if mod.init is None:
            mod.state = "Live"
            return
        try:
            ret = mod.init()
        except BaseException as exc:  # noqa: BLE001
            k.oops(ctx, exc, f"{mod.name} init function {k.symbols.symbol(mod.init)}")
            self.rollback(ctx, mod, "its init raised")
            raise ModuleLoadError(mod.name, EFAULT,
                                  f"init {getattr(mod.init, '__name__', '?')}() raised "
                                  f"{type(exc).__name__}: {exc}") from exc
        if ret is None:
            ret = 0
        if not isinstance(ret, int) or isinstance(ret, bool):
            self.rollback(ctx, mod, "its init returned a non-integer")
            raise ModuleLoadError(mod.name, EINVAL,
                                  f"init returned {ret!r}; it must return 0 or a negative errno")
        if ret < 0:
            self.rollback(ctx, mod, f"its init returned {ret}")
            raise ModuleLoadError(mod.name, -ret, f"init returned {ret}")
        if ret > 0:
            k.log_line(4, f"do_init_module: '{mod.name}'->init suspiciously returned {ret}, "
                          "it should follow 0/-E convention")
            k.log_line(4, "do_init_module: loading module anyway...")
        mod.state = "Live"

    def _apply_params(self, ctx: ExecCtx, mod: Module, meta: ModuleMeta) -> bool:
        k = self.kernel
        g = mod.module.__dict__
        ok = True
        for pname, raw in mod.params.items():
            if pname not in meta.params:
                k.log_line(4, f"{mod.name}: unknown parameter '{pname}' ignored")
                continue
            ptype, _perm = meta.params[pname]
            try:
                g[pname] = convert_param(ptype, raw)
            except ValueError:
                k.log_line(4, f"{mod.name}: '{raw}' invalid for parameter '{pname}'")
                ok = False
        return ok

    def rollback(self, ctx: ExecCtx, mod: Module, why: str | None) -> None:
        """Undo a failed load: release what the module left registered."""
        if why is not None:
            self.kernel.release_module_resources(ctx, mod, why)
        self.forget(mod)
        mod.state = "Unloaded"

    # ------------------------------------------------------------------
    # unloading
    def check_unload(self, name: str) -> Module:
        mod = self.loaded.get(name)
        if mod is None:
            raise ModuleError(f"Module {name} is not currently loaded")
        if mod.refcount > 0 or mod.users:
            users = ",".join(mod.users)
            raise ModuleError(f"Module {name} is in use" + (f" by: {users}" if users else ""))
        if mod.state != "Live":
            raise ModuleError(f"could not remove '{name}': Device or resource busy "
                              f"(the module is {mod.state.lower()})")
        if mod.init is not None and mod.exit is None:
            err = ModuleError(f"could not remove '{name}': Device or resource busy (it has an "
                              "init function but no exit function, so it cannot be unloaded)")
            err.errno = EBUSY  # type: ignore[attr-defined]
            raise err
        return mod

    def unload_in_task(self, ctx: ExecCtx, mod: Module) -> None:
        k = self.kernel
        mod.state = "Going"
        try:
            if mod.exit is not None:
                try:
                    mod.exit()
                except BaseException as exc:  # noqa: BLE001
                    k.oops(ctx, exc, f"{mod.name} exit function {k.symbols.symbol(mod.exit)}")
        finally:
            self._by_globals.pop(id(mod.module.__dict__), None)
            self.unloaded[id(mod.module.__dict__)] = mod
            self.loaded.pop(mod.name, None)
            self.last_unloaded = f"{mod.name}({mod.taints})" if mod.taints else mod.name
            mod.state = "Unloaded"

    # ------------------------------------------------------------------
    def proc_modules(self) -> str:
        out = []
        for m in reversed(list(self.loaded.values())):
            deps = ",".join(m.users) + "," if m.users else "-"
            taint = f" ({m.taints})" if m.taints else ""
            out.append(f"{m.name} {m.size} {m.refcount} {deps} {m.state} 0x{m.address:016x}{taint}")
        return "".join(line + "\n" for line in out)

    def lsmod_text(self) -> str:
        lines = ["Module                  Size  Used by"]
        for m in reversed(list(self.loaded.values())):
            users = " " + ",".join(m.users) if m.users else ""
            lines.append(f"{m.name:<19s} {m.size:8d}  {m.refcount}{users}")
        return "\n".join(lines) + "\n"


def convert_param(ptype: str, raw: Any) -> Any:
    """param_set_*: turn an insmod argument into the declared type."""
    if ptype in ("int", "uint", "long", "ulong", "short", "ushort", "byte", "ullong"):
        if isinstance(raw, bool):
            raise ValueError(raw)
        v = int(raw, 0) if isinstance(raw, str) else int(raw)
        if ptype.startswith("u") or ptype == "byte":
            if v < 0:
                raise ValueError(raw)
        return v
    if ptype in ("bool", "invbool"):
        if isinstance(raw, bool):
            v2 = raw
        else:
            s = str(raw).strip().lower()
            if s in ("1", "y", "yes", "true", "on", ""):
                v2 = True
            elif s in ("0", "n", "no", "false", "off"):
                v2 = False
            else:
                raise ValueError(raw)
        return (not v2) if ptype == "invbool" else v2
    if ptype in ("charp", "string", "str"):
        return str(raw)
    raise ValueError(f"unknown parameter type {ptype}")


# Declared by the headers a module includes, though not exported to modules:
# defining one in a module still fails to compile ("conflicting types").
# include/linux/workqueue.h declares `void __init workqueue_init(void)` and
# `workqueue_init_early()` for the boot code (reference §12).
HEADER_ONLY_NAMES = {"workqueue_init", "workqueue_init_early"}


def _api_names() -> set[str]:
    from . import linux

    return {n for n in linux.__all__ if not n.isupper()} | HEADER_ONLY_NAMES


def _used_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def find_api_clash(tree: ast.Module, path: str, modname: str) -> str | None:
    """A top-level definition that shadows a kernel API name (C: conflicting types)."""
    api = _api_names()
    for node in tree.body:
        names: list[tuple[str, int]] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append((node.name, node.lineno))
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.append((t.id, node.lineno))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.append((node.target.id, node.lineno))
        for n, line in names:
            if n in api:
                calls = [c.lineno for c in ast.walk(tree) if isinstance(c, ast.Call)
                         and isinstance(c.func, ast.Name) and c.func.id == n]
                also = f"; the call at line {calls[0]} would call the module's own {n}() " \
                       f"instead of the kernel's" if calls else ""
                return (f"{path}:{line}: error: '{n}' is the name of a kernel function "
                        f"(in C: conflicting types for '{n}'){also}. Rename it, e.g. "
                        f"'{modname}_{n.split('_')[-1]}'")
    return None
