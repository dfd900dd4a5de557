#%Module1.0
## Environment Modules (Tcl) module file: send popularity-contest's counts to the cluster's
## collector.
##
## Install as <modulepath>/popularity-contest/1 (without the .tcl suffix), or paste the
## setenv lines into the module file of your Python stack. The reporter itself is switched on
## in the shared interpreter (`popularity-contest install site`, once, by an administrator);
## these variables only say where its counts go. See docs/guides/hpc.md.
##
## Edit the two values below: the login node's address on the cluster network (where
## `popularity-contest serve` listens for UDP) and the name this stack reports under.

proc ModulesHelp { } {
    puts stderr "Python processes of the shared stack report which installed packages they"
    puts stderr "imported (package names only, one UDP datagram per process at exit) to the"
    puts stderr "collector on the login node. To opt out: export PYTHON_POPCONTEST_DISABLE=1."
}

module-whatis "where the Python package usage reporter sends its counts"

set collector login1.cluster.example
set stack python-2024

setenv PYTHON_POPCONTEST_STATSD_HOST $collector
setenv PYTHON_POPCONTEST_STATSD_PORT 8125
# One collector, several stacks: `popularity-contest report --by hub` splits by this.
setenv PYTHON_POPCONTEST_STATSD_PREFIX python_popcon.hub.$stack.imported_package
