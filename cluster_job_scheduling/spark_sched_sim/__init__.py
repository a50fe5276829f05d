"""Spark cluster scheduling simulator (after spark-sched-sim), on TPC-H or synthetic job DAGs."""
