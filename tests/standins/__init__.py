"""Stand-ins: test doubles of outside services that cannot run on these machines."""
