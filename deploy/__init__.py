"""`shoal.deploy`: no code, only the shipped monitoring files as package data.

prometheus/ (configuration, alert rules and their tests) and grafana/
(dashboards, provisioning) are installed with the package so that
`swarmd lab up --prometheus` runs exactly what operators are given.
"""
