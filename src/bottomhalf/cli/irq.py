"""``bh irq`` and ``bh devices``: interrupts from outside the kernel.

    bh irq LINE [--cpu C] [--count K] [--rate HZ]
    bh devices [--add NAME=KIND:irq=N,...]

``bh irq`` asserts a line the way a device would: the handlers registered
with ``request_irq`` run in hard-IRQ context on ``--cpu`` (default: the
line's affinity, CPU 0).  ``--count`` asserts it K times, at once or, with
``--rate``, HZ times a second of the kernel's time (the command returns at
once; the interrupts follow).  Linux has no such command: on a real machine
the hardware does this.

``bh devices`` lists the virtual devices a module can attach to
(``bh_device(name)`` in ``bottomhalf.linux``), and plugs one in with
``--add``; ``bh boot --device`` does the same at boot.
"""

from __future__ import annotations

import argparse
import sys

from .common import add_name_option, call, number_arg


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("irq", help="assert an interrupt line, as a device would",
                       description="Assert interrupt line LINE as a device would; its handlers "
                                   "run in hard-IRQ context.",
                       epilog="example: bh irq 17 --count 100 --rate 1000")
    add_name_option(p)
    p.add_argument("line", type=number_arg("LINE", integer=True), metavar="LINE", help="the IRQ number")
    p.add_argument("--cpu", type=number_arg("--cpu", integer=True), default=None, metavar="C",
                   help="the CPU that takes it (default: the line's affinity)")
    p.add_argument("--count", type=number_arg("--count", minimum=1, integer=True), default=1, metavar="K",
                   help="assert it K times (default 1)")
    p.add_argument("--rate", type=number_arg("--rate", strict=True), default=None, metavar="HZ",
                   help="spread the K interrupts at HZ per second of kernel time")
    p.set_defaults(handler=cmd_irq)

    p = sub.add_parser("devices", help="list the virtual devices, or plug one in",
                       description="List the virtual devices modules can attach to "
                                   "(bh_device(name)), or add one.")
    add_name_option(p)
    p.add_argument("--add", metavar="NAME=KIND:irq=N,...",
                   help="plug in a device: KIND periodic (period=MS) or bursty "
                        "(burst=N,spacing=MS,gap=MS); cpu=C")
    p.set_defaults(handler=cmd_devices)


def cmd_irq(args: argparse.Namespace) -> int:
    call(args, "irq", line=args.line, cpu=args.cpu, count=args.count, rate_hz=args.rate)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    if args.add is not None:
        sys.stdout.write(call(args, "add_device", spec=args.add) + "\n")
        return 0
    devices = call(args, "devices")
    if not devices:
        sys.stdout.write("no virtual devices (add one with: bh devices --add "
                         "net0=bursty:irq=40)\n")
    for d in devices:
        sys.stdout.write(d + "\n")
    return 0
