"""swarmctl: the command-line client of the Control API (`shoal.ctl.main:main`)."""
