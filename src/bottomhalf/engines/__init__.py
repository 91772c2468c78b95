"""The two engines that run the kernel model: ``sim`` and ``real``."""
