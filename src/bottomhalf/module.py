"""Loadable modules: insmod, rmmod, /proc/modules, lsmod.

Mirrors kernel/module/main.c (``load_module``, ``do_init_module``,
``delete_module``), kernel/module/procfs.c and kmod's messages (reference
§11).  A module is a Python file; each load executes it afresh as a new
module object, in the process context of an ``insmod`` task, then calls its
init.  The steps come in Linux's order:

1. what the C toolchain would refuse, before any code runs: the file must
   parse; it must not define a name of the kernel API (in C the tutorial's
   ``static int __init tasklet_init(void)`` does not compile: "conflicting
   types for 'tasklet_init'"; in Python it would silently shadow the API);
   the file is executed (a module's top level only declares things); it must
   call ``MODULE_LICENSE`` (modpost: ``missing MODULE_LICENSE() in ...``);
2. ``module_augment_kernel_taints``: "loading out-of-tree module taints
   kernel." (every module here is out of tree) and, for a licence that is not
   GPL-compatible, "module license '...' taints kernel." and, the first time
   anything makes lockdep unreliable, "Disabling lock debugging due to
   kernel taint".  These taints stay even if the load then fails;
3. ``simplify_symbols``: a non-GPL module using an ``EXPORT_SYMBOL_GPL``
   name gets "Unknown symbol NAME (err -2)" for each, and ``-ENOENT``;
4. ``parse_args``: parameters (``insmod(path, count=3)``), see
   :mod:`bottomhalf.params`;
5. ``do_init_module``: the module appears in /proc/modules as ``Loading``,
   its init runs; 0 makes it ``Live``.

An init that returns ``-errno`` or raises is rolled back completely: what
the module registered (IRQ handlers, queued tasklets and work, armed timers,
workqueues, kernel threads) is released with a ``bottomhalf:`` line in the
log for each (Linux would leak them and crash later), and
``ModuleLoadError`` is raised.  A module unloaded with deferred work still
queued is *not* cleaned up: as on Linux, the kernel later jumps into its
freed code and reports the page fault.

Guards: the registries are written only by insmod/rmmod tasks, one at a
time per module name; readers (symbolization, /proc/modules) take snapshots.
"""

from __future__ import annotations

import ast
import os
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errnos import EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, ENOEXEC
from .errors import ModuleError, ModuleLoadError
from .modname import module_name
from .params import convert_param, param_text

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
    "tasklet_unlock_wait",
}

# Module.state; /proc/modules says Loading/Live/Unloading
UNFORMED, COMING, LIVE, GOING, GONE = "Unformed", "Coming", "Live", "Going", "Unloaded"
_PROC_STATE = {COMING: "Loading", LIVE: "Live", GOING: "Unloading"}

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
    state: str = UNFORMED
    taints: str = ""
    size: int = 4096
    address: int = 0
    init: Any = None
    exit: Any = None
    used_names: set[str] = field(default_factory=set)

    def __repr__(self) -> str:
        return f"<Module {self.name} {self.state} refcount={self.refcount}>"

    def flags(self, show_state: bool = True) -> str:
        """module_flags(): ``(PO)``, with ``+`` while loading, ``-`` while unloading."""
        state = ""
        if show_state and self.state == COMING:
            state = "+"
        elif show_state and self.state == GOING:
            state = "-"
        if not self.taints and not state:
            return ""
        return f"({self.taints}{state})"

    @property
    def permanent(self) -> bool:
        """An init but no exit: Linux refuses to unload it."""
        return self.init is not None and self.exit is None


class ModuleMeta:
    """What MODULE_* and module_* calls record while the file executes."""

    def __init__(self) -> None:
        self.init: Any = None
        self.exit: Any = None
        self.license: str | None = None
        self.author = ""
        self.description = ""
        self.version = ""
        self.params: dict[str, tuple[str, int]] = {}  # name -> (type, perm)
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

    def _listed(self) -> list[Module]:
        """The modules list, newest first (list_add_rcu at the head)."""
        return [m for m in reversed(list(self.loaded.values())) if m.state != UNFORMED]

    def linked_in(self) -> str:
        """print_modules(): what follows "Modules linked in:"."""
        out = "".join(f" {m.name}{m.flags()}" for m in self._listed())
        if self.last_unloaded:
            out += f" [last unloaded: {self.last_unloaded}]"
        return out

    def owns(self, mod: Module) -> Any:
        g = mod.module.__dict__

        def check(fn: Any) -> bool:
            fn = getattr(fn, "__wrapped__", fn)  # a kthread's body wraps the module's threadfn
            return getattr(getattr(fn, "__func__", fn), "__globals__", None) is g

        return check

    # ------------------------------------------------------------------
    # loading
    def prepare(self, path: str, params: dict[str, Any]) -> tuple[Module, types.CodeType]:
        """What happens before any module code runs; nothing changes on failure."""
        name = module_name(path)
        if not os.path.isfile(path):
            raise ModuleLoadError(name, ENOENT, f"{path}: no such module file", found=False)
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

    def load_in_task(self, ctx: ExecCtx, mod: Module, code: types.CodeType) -> None:
        """Runs in the insmod task: load_module() then do_init_module()."""
        k = self.kernel
        g = mod.module.__dict__
        g["KBUILD_MODNAME"] = mod.name
        self._by_globals[id(g)] = mod  # symbolization works while the file runs
        try:
            exec(code, g)
        except Exception as exc:
            self.rollback(ctx, mod, "its top-level code raised")
            raise ModuleLoadError(mod.name, ENOEXEC,
                                  f"executing {mod.path} raised {type(exc).__name__}: {exc}"
                                  ) from exc
        meta = meta_of(g)
        if meta.license is None:
            self.rollback(ctx, mod, "it has no licence")
            raise ModuleLoadError(mod.name, ENOEXEC, f"missing MODULE_LICENSE() in {mod.path}")
        mod.license = meta.license
        mod.author = meta.author
        mod.description = meta.description
        mod.version = meta.version
        mod.init = meta.init
        mod.exit = meta.exit
        if mod.name in self.loaded:  # add_unformed_module(): another load won the race
            self.rollback(ctx, mod, None)
            raise ModuleLoadError(mod.name, EEXIST, f"module {mod.name} is already loaded")
        self.loaded[mod.name] = mod
        self._augment_kernel_taints(mod)
        gpl_only = sorted(mod.used_names & GPL_ONLY) if "P" in mod.taints else []
        for sym in gpl_only:
            k.log_line(4, f"{mod.name}: Unknown symbol {sym} (err -{ENOENT})")
        if gpl_only:
            self.rollback(ctx, mod, "it used GPL-only symbols")
            raise ModuleLoadError(mod.name, ENOENT,
                                  f"a module with licence '{meta.license}' may not use the "
                                  "GPL-only symbols " + ", ".join(gpl_only))
        if not self._parse_args(mod, meta):
            self.rollback(ctx, mod, "a parameter was invalid")
            raise ModuleLoadError(mod.name, EINVAL, "invalid module parameter (see dmesg)")
        self.do_init_module(ctx, mod)

    def _augment_kernel_taints(self, mod: Module) -> None:
        """module_augment_kernel_taints(): out-of-tree, then the licence."""
        k = self.kernel
        if "O" not in k.taint:
            k.log_line(4, f"{mod.name}: loading out-of-tree module taints kernel.")
        k.add_taint("O")
        taints = "O"
        if mod.license not in GPL_COMPATIBLE:
            if "P" not in k.taint:
                k.log_line(4, f"{mod.name}: module license '{mod.license}' taints kernel.")
            k.add_taint("P", lockdep_ok=False)
            taints = "PO"
        mod.taints = taints

    def _parse_args(self, mod: Module, meta: ModuleMeta) -> bool:
        """parse_args() with unknown_module_param_cb: stops at the first bad value."""
        k = self.kernel
        g = mod.module.__dict__
        for pname, raw in mod.params.items():
            if pname not in meta.params:
                k.log_line(4, f"{mod.name}: unknown parameter '{pname}' ignored")
                continue
            ptype, _perm = meta.params[pname]
            try:
                g[pname] = convert_param(ptype, raw)
            except ValueError:
                k.log_line(3, f"{mod.name}: `{param_text(raw)}' invalid for parameter `{pname}'")
                return False
        return True

    def do_init_module(self, ctx: ExecCtx, mod: Module) -> None:
        k = self.kernel
        mod.state = COMING
        if mod.init is None:
            mod.state = LIVE
            return
        try:
            ret = mod.init()
        except Exception as exc:
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
                          "it should follow 0/-E convention\n"
                          "do_init_module: loading module anyway...")
            k.dump_stack(ctx)
        mod.state = LIVE

    def rollback(self, ctx: ExecCtx, mod: Module, why: str | None) -> None:
        """Undo a failed load: release what the module left registered; its code
        counts as freed from now on."""
        if why is not None:
            self.kernel.release_module_resources(ctx, mod, why)
        g = mod.module.__dict__
        self._by_globals.pop(id(g), None)
        if self.loaded.get(mod.name) is mod:
            del self.loaded[mod.name]
        self.unloaded[id(g)] = mod
        mod.state = GONE

    # ------------------------------------------------------------------
    # unloading
    def check_unload(self, name: str) -> Module:
        """delete_module()'s checks, and kmod's words for them; nothing changes."""
        mod = self.loaded.get(name)
        if mod is None:
            raise ModuleError(f"Module {name} is not currently loaded", ENOENT)
        if mod.refcount > 0:
            raise ModuleError(f"Module {name} is in use", EBUSY)
        if mod.state != LIVE:
            raise ModuleError(f"could not remove '{name}': Device or resource busy "
                                f"(the module is {_PROC_STATE.get(mod.state, mod.state).lower()})",
                                EBUSY)
        if mod.permanent:
            raise ModuleError(f"could not remove '{name}': Device or resource busy (it has an "
                                "init function but no exit function, so it cannot be unloaded)",
                                EBUSY)
        return mod

    def unload_in_task(self, ctx: ExecCtx, mod: Module) -> None:
        k = self.kernel
        mod.state = GOING
        try:
            if mod.exit is not None:
                try:
                    mod.exit()
                except Exception as exc:
                    k.oops(ctx, exc, f"{mod.name} exit function {k.symbols.symbol(mod.exit)}")
        finally:
            self.last_unloaded = f"{mod.name}{mod.flags(show_state=False)}"
            self.rollback(ctx, mod, None)

    # ------------------------------------------------------------------
    def proc_modules(self) -> str:
        """kernel/module/procfs.c m_show(), one line per module, newest first.

        The fourth column is print_unload_info()'s: each module using this one's
        symbols, then ``[permanent],`` for one that cannot be unloaded, or ``-``
        for neither.  Modules here cannot use each other's symbols, so the list
        of users is always empty."""
        out = []
        for m in self._listed():
            deps = "[permanent]," if m.permanent else "-"
            taint = f" {m.flags()}" if m.taints else ""
            out.append(f"{m.name} {m.size} {m.refcount} {deps} {_PROC_STATE[m.state]} "
                       f"0x{m.address:016x}{taint}\n")
        return "".join(out)

    def lsmod_text(self) -> str:
        """kmod's lsmod: the header, then name, size and use count.  kmod adds the
        using modules after the count; here there are none (see proc_modules)."""
        lines = ["Module                  Size  Used by"]
        for m in self._listed():
            lines.append(f"{m.name:<19s} {m.size:8d}  {m.refcount}")
        return "\n".join(lines) + "\n"


# Declared by the headers a module includes, though not exported to modules:
# defining one in a module still fails to compile ("conflicting types").
# include/linux/workqueue.h declares `void __init workqueue_init(void)` and
# `workqueue_init_early()` for the boot code (reference §12).
HEADER_ONLY_NAMES = {"workqueue_init", "workqueue_init_early", "workqueue_init_topology",
                     "softirq_init", "init_timers"}


def _api_names() -> dict[str, str]:
    """Kernel names a module must not redefine, each with what it is."""
    import inspect

    from . import linux

    names = {n: "kernel function" for n in HEADER_ONLY_NAMES}
    for n in linux.__all__:
        if not n.isupper():
            names[n] = "kernel type" if inspect.isclass(getattr(linux, n)) else "kernel function"
    return names


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
            if n not in api:
                continue
            calls = [c.lineno for c in ast.walk(tree) if isinstance(c, ast.Call)
                     and isinstance(c.func, ast.Name) and c.func.id == n]
            also = (f"; the call at line {min(calls)} would call the module's own {n}() "
                    "instead of the kernel's") if calls else ""
            return (f"{path}:{line}: error: '{n}' is the name of a {api[n]} "
                    f"(in C: conflicting types for '{n}'){also}. Rename it, e.g. "
                    f"'{modname}_{n.split('_')[-1]}'")
    return None
