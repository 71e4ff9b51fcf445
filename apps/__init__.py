"""The applications: the `pdsim` command line, the cluster launcher, the experiment with its report and plots,
`observe` (Prometheus), the Grafana dashboard and the `generate` client.

The top layer: it may import every layer below (servers, load generator, benchmarks, the pdsim library);
nothing imports it.
"""
