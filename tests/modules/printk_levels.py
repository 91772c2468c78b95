"""printk at every level, the pr_* helpers and pr_fmt; pr_debug without DEBUG."""

from bottomhalf.linux import *


def pr_fmt(fmt):
    return KBUILD_MODNAME + ": " + fmt


def printk_levels_init():
    printk(KERN_EMERG + "emerg\n")
    printk(KERN_ALERT + "alert\n")
    printk(KERN_CRIT + "crit\n")
    printk(KERN_ERR + "err\n")
    printk(KERN_WARNING + "warning\n")
    printk(KERN_NOTICE + "notice\n")
    printk(KERN_INFO + "info\n")
    printk(KERN_DEBUG + "debug\n")
    printk(KERN_DEFAULT + "default\n")
    printk("none\n")
    pr_emerg("pr_emerg %d\n", 0)
    pr_alert("pr_alert %d\n", 1)
    pr_crit("pr_crit %d\n", 2)
    pr_err("pr_err %d\n", 3)
    pr_warn("pr_warn %d\n", 4)
    pr_notice("pr_notice %d\n", 5)
    pr_info("pr_info %d\n", 6)
    pr_debug("pr_debug %d\n", 7)
    pr_info("pr_info then")
    pr_cont(" pr_cont %s\n", "(no pr_fmt)")
    return 0


def printk_levels_exit():
    pass


module_init(printk_levels_init)
module_exit(printk_levels_exit)
MODULE_LICENSE("GPL")
