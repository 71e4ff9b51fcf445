"""`pdsim calibrate`: fit a hardware profile to the steps this machine's device really takes."""
