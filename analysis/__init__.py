"""Reading results: network statistics, homogenization measures, network effects, theory, figures, reports.

For notebooks::

    from analysis import analyze, load_sweep, network_statistics, homogenization_over_time
"""

from analysis.homogenization import homogenization_over_time
from analysis.network_stats import network_statistics, node_statistics
from analysis.report import analyze
from analysis.sweep_frame import load_sweep

__all__ = ["analyze", "homogenization_over_time", "load_sweep", "network_statistics", "node_statistics"]
