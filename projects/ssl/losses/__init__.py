"""SSL losses, one file each: ``ntxent`` (SimCLR), ``byol`` (BYOL), ``mocov3`` (MoCo v3)."""
