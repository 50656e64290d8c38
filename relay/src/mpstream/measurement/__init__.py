"""What a run measured: the per-NIC recorder on each node (`recorder`), the node's clock
(`clock`), and the report that turns a run's or a batch's files into numbers, tables and
figures (`report`)."""
